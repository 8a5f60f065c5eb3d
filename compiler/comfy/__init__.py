"""ComfyUI's side of the wire: address, client (HTTP), events (WebSocket),
the node catalogue and the editor workflow. Imports only errors and ir/.
"""
