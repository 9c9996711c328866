"""The appliance's HTTP server: health, metrics, the device page, its API and browser talk.

One Starlette app served by uvicorn inside the appliance's own event loop (`server.WebServer`).
"""
