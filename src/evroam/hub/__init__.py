"""evroam as a roaming Hub (transport_and_format.asciidoc, "Message Routing";
docs/hub.md): a layer in front of the module routers that forwards, broadcasts
and merges for the parties connected to it. Generic: it never names a module,
it asks the registry (Module.broadcast, Module.route)."""
