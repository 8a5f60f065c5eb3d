"""The official flow, as ComfyUI's script_examples/websockets_api_example.py
does it, as a whole process: open the WebSocket, POST /prompt, wait for
`executing` with node null and our prompt_id, GET /history/{id}, GET /view for
each image, write the images. No checks, no run folder, no catalogue.

    python benchmarks/official_flow.py HOST:PORT graph.api.json OUTDIR [--seed N]

Prints the prompt_id. benchmarks/cli_overhead.py times it beside `recipe run`.
"""
import json
import sys
import urllib.parse
import urllib.request
import uuid

import websocket  # websocket-client, as the example uses


def main(argv):
    server, graph_file, out = argv[:3]
    prompt = json.load(open(graph_file))
    if "--seed" in argv:
        seed = int(argv[argv.index("--seed") + 1])
        for node in prompt.values():
            for key in ("seed", "noise_seed"):
                if key in node["inputs"]:
                    node["inputs"][key] = seed
    client_id = str(uuid.uuid4())
    ws = websocket.WebSocket()
    ws.connect(f"ws://{server}/ws?clientId={client_id}")
    body = json.dumps({"prompt": prompt, "client_id": client_id}).encode()
    req = urllib.request.Request(f"http://{server}/prompt", data=body)
    prompt_id = json.loads(urllib.request.urlopen(req).read())["prompt_id"]
    while True:
        message = ws.recv()
        if isinstance(message, str):
            data = json.loads(message)
            if data["type"] == "executing" and data["data"]["node"] is None \
                    and data["data"]["prompt_id"] == prompt_id:
                break
    history = json.loads(urllib.request.urlopen(f"http://{server}/history/{prompt_id}").read())[prompt_id]
    n = 0
    for output in history["outputs"].values():
        for image in output.get("images", []):
            query = urllib.parse.urlencode({"filename": image["filename"], "subfolder": image["subfolder"],
                                            "type": image["type"]})
            data = urllib.request.urlopen(f"http://{server}/view?{query}").read()
            n += 1
            with open(f"{out}/{prompt_id}-{n}.png", "wb") as fh:
                fh.write(data)
    ws.close()
    print(prompt_id)


if __name__ == "__main__":
    main(sys.argv[1:])
