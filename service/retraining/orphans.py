"""Versions a crashed job registered but never promoted are tagged `orphaned`, never left `pending`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from retrain.registry import Registry

log = logging.getLogger("driftloop.jobs")

#: validation_status values of a version still waiting for its job's decision
UNDECIDED = ("pending", "passed", "forced")
ORPHANED = "orphaned"


def tag_orphans(registry: Registry, model_name: str, job_id: int, *, reason: str) -> list[str]:
    """Tag every version registered by job `job_id` that is neither decided nor the champion as
    `validation_status=orphaned` (with the reason); returns their versions, oldest first."""
    found = []
    for info in registry.list_versions(model_name):
        if info.tags.get("job_id") != str(job_id) or "champion" in info.aliases:
            continue
        if info.tags.get("validation_status", "pending") in UNDECIDED:
            registry.tag_version(
                model_name, info.version,
                {"validation_status": ORPHANED, "driftloop.orphaned_reason": reason[:250]},
            )  # fmt: skip
            found.append(info.version)
    if found:
        log.warning("versions %s of %s left by retrain job %s tagged orphaned", found, model_name, job_id)
    return sorted(found, key=int)
