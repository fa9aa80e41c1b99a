from evroam.cli import app

app(prog_name="evroam")
