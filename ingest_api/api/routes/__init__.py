"""One module per resource; api/app.py lists their routers."""
