"""The floor of bench/sync.py: the Kubernetes writes a cold sync must make, issued by an efficient client.

For each HSMSecret of a namespace: create its Secret and merge-patch its status, both shaped exactly like
the operator's (templates taken from HSMSecrets the operator converged in the same run), as the operator's
ServiceAccount, from where the operator runs. Threads with one kept-alive connection each; no reads, no
watches, no agents. Prints the seconds it took as its last line.
Usage (bench/sync.py runs it): python bench/floors/sync_writes.py KUBECONFIG PLAN_JSON WORKERS
"""

from __future__ import annotations

import http.client
import json
import pathlib
import sys
import threading
import time
from typing import Any

from devcluster import kubeapi


def work(client: kubeapi.Client, plan: dict[str, Any], jobs: list[dict[str, Any]], errors: list[str]) -> None:
    namespace = plan["namespace"]
    headers = {"Accept": "application/json", "Authorization": f"Bearer {client.token}"}
    conn = http.client.HTTPSConnection(client.host, client.port, context=client.context, timeout=60)
    try:
        for job in jobs:
            secret = json.loads(json.dumps(plan["secret"]))
            secret["metadata"] |= {"name": job["name"], "namespace": namespace}
            secret["metadata"]["labels"] |= {plan["owner_label"]: job["name"]}
            secret["metadata"]["ownerReferences"][0] |= {"name": job["name"], "uid": job["uid"]}
            for method, path, body, content_type in (
                ("POST", f"/api/v1/namespaces/{namespace}/secrets", secret, "application/json"),
                (
                    "PATCH",
                    f"{plan['hsmsecrets']}/{job['name']}/status",
                    {"status": plan["status"]},
                    "application/merge-patch+json",
                ),
            ):
                conn.request(
                    method, path, body=json.dumps(body), headers=headers | {"Content-Type": content_type}
                )
                response = conn.getresponse()
                answer = response.read()
                if response.status >= 300:
                    errors.append(f"{method} {path}: {response.status} {answer[:200]!r}")
    finally:
        conn.close()


def main() -> int:
    kubeconfig, plan_file, workers = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), int(sys.argv[3])
    client = kubeapi.Client.from_kubeconfig(kubeconfig)
    plan = json.loads(plan_file.read_text())
    jobs: list[dict[str, Any]] = plan["jobs"]
    errors: list[str] = []
    threads = [
        threading.Thread(target=work, args=(client, plan, jobs[i::workers], errors)) for i in range(workers)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    for error in errors[:5]:
        print(error, file=sys.stderr)
    print(f"{elapsed:.3f} {len(errors)}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
