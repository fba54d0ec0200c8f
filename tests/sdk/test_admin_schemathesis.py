"""schemathesis against the admin API's OpenAPI document, with the bootstrap admin token.

A gateway of its own (schemathesis creates, changes and revokes objects), on a fresh data
directory. Passing means: no 5xx answer and no answer that breaks the documented schema, over
every phase (coverage, fuzzing, stateful sequences that chain created ids).
"""

import json
import os
import subprocess
import sys
import tempfile
import urllib.request

from conftest import ADMIN_TOKEN, _start, _stop

CONFIG = """
server: {{ listen: "127.0.0.1:0", data_dir: "{data}" }}
providers: [{{ name: sim, type: openai_compatible, base_url: "http://127.0.0.1:9/v1" }}]
routes:
  - {{ name: chat, deployments: [{{ provider: sim, model: m }}] }}
  - {{ name: other, deployments: [{{ provider: sim, model: m }}] }}
"""


def test_admin_api_conforms_to_its_openapi_document():
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "tollgate.yaml")
        with open(cfg, "w") as f:
            f.write(CONFIG.format(data=os.path.join(tmp, "data")))
        gw, url = _start(["serve", "--config", cfg], env={"TOLLGATE_ADMIN_TOKEN": ADMIN_TOKEN})
        try:
            req = urllib.request.Request(
                f"{url}/admin/v1/openapi.json", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}
            )
            with urllib.request.urlopen(req, timeout=10) as r:
                doc = json.loads(r.read())
            assert doc["openapi"].startswith("3.1")
            spec = os.path.join(tmp, "openapi.json")
            with open(spec, "w") as f:
                json.dump(doc, f)
            st = os.path.join(os.path.dirname(sys.executable), "schemathesis")
            run = subprocess.run(
                [
                    st, "run", spec,
                    "--url", url,
                    "-H", f"Authorization: Bearer {ADMIN_TOKEN}",
                    "--checks", "not_a_server_error,response_schema_conformance",
                    "--max-examples", "30",
                    "--seed", "1",
                    "--request-timeout", "10",
                ],
                capture_output=True,
                text=True,
                timeout=600,
                cwd=tmp,
            )
            tail = "\n".join(run.stdout.splitlines()[-25:])
            assert run.returncode == 0, f"schemathesis failed:\n{run.stdout[-6000:]}\n{run.stderr[-2000:]}"
            assert "passed" in tail, tail
            print(tail)
        finally:
            _stop(gw)
