"""The demo node's Ray Serve state: the seed's deployment, which autoscaling can never grow.

One application ``medgemma`` with ``VLLMDeployment`` asking for ``num_gpus=4`` and autoscaling
min 2 / max 16 / target 5 on a single 4-GPU node: replica 1 runs (its actor is the demo node's
``ray::ServeReplica`` process), replica 2 waits for resources forever.
"""

from __future__ import annotations

import time
from typing import Callable

from vramtop.ray.model import OK, Application, Autoscaling, Deployment, Node, RayState, Replica

ADDRESS = "http://127.0.0.1:8265 (demo)"
NODE_ID = "d3m0a10n0de"
_UP_FOR_S = 400.0  # the replica started this long before the demo's clock
_WAITING_FOR_S = 305.0  # and the second replica has waited this long for resources
_REPLICA_PID = 4000  # the demo node's ray::ServeReplica:medgemma:VLLMDeployment


class DemoRayPoller:
    """Same ``poll()`` as ``RayPoller``; times are relative to the clock when the poller opened,
    so a fixed clock gives the same picture every time."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._opened = clock()

    def poll(self) -> RayState:
        now = self._clock()
        # as of opening; the pending replica's wait then grows as a live one's does
        started, waiting_since = self._opened - _UP_FOR_S, self._opened - _WAITING_FOR_S
        deployment = Deployment(
            app="medgemma", name="VLLMDeployment", status="UPSCALING", status_trigger="AUTOSCALING",
            message="Deployment 'VLLMDeployment' in application 'medgemma' has 1 replicas that have taken more "
                    "than 30s to be scheduled. This may be due to waiting for the cluster to auto-scale or for "
                    "a runtime environment to be installed. Resources required for each replica: "
                    "{\"CPU\": 1.0, \"GPU\": 4.0}, total resources available: {\"CPU\": 15.0}.",
            target_num_replicas=2,
            autoscaling=Autoscaling(min_replicas=2, max_replicas=16, initial_replicas=None, target_ongoing_requests=5),
            num_gpus=4.0, num_cpus=1.0, required_resources={"CPU": 1.0, "GPU": 4.0},
            replicas=(
                Replica("r1medgemma", "RUNNING", "SERVE_REPLICA::medgemma#VLLMDeployment#r1medgemma", "a1",
                        _REPLICA_PID, NODE_ID, "10.0.0.10", started),
                Replica("r2medgemma", "STARTING", "SERVE_REPLICA::medgemma#VLLMDeployment#r2medgemma", "a2",
                        None, None, None, waiting_since),
            ),
        )
        node = Node(NODE_ID, "10.0.0.10", "demo-a10-node", True, "ALIVE",
                    resources_total={"CPU": 16.0, "GPU": 4.0}, resources_used={"CPU": 1.0, "GPU": 4.0})
        return RayState(
            address=ADDRESS, status=OK, checked_at=now, last_success=now, ray_version="2.60.0",
            applications=(Application("medgemma", "RUNNING", route_prefix="/", import_path="serve_medgemma:app",
                                      last_deployed_time_s=started),),
            deployments=(deployment,), nodes=(node,),
        )
