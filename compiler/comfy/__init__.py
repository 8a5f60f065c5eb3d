"""ComfyUI's side of the wire: address (+ timeouts, headers), transport (the one
place third-party exceptions become ours), client (HTTP), events (WebSocket),
object_info (the node catalogue) and the editor workflow. Imports only errors and ir/.
"""
