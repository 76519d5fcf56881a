"""A `write` token registers and records metrics but does not change stages (issue 12,
acceptance 1): refused by the lifecycle on the v1 API and through MLflow's transition, with
nothing changed; a `promote` token makes the same move."""

from __future__ import annotations

import pytest

from gov_support import mlflow_transition, register
from modelreg.shared.errors import Forbidden


def test_a_write_token_cannot_change_a_stage_and_a_promote_token_can(daemon, admin, token, tmp_path) -> None:
    register(admin, tmp_path, 1, auc=0.9)
    register(admin, tmp_path, 2, auc=0.95)
    admin.transition("fraud@1", "production", reason="seed")
    trainer = token("trainer", "write")
    trainer.record_metrics("fraud@2", {"auc": 0.96})  # what write is for
    before = admin.history("fraud")
    with pytest.raises(Forbidden, match="promote"):
        trainer.transition("fraud@2", "production", reason="mine")
    with pytest.raises(Forbidden, match="promote"):
        trainer.rollback("fraud", reason="mine")
    status, err = mlflow_transition(daemon.url, trainer.secret, "fraud", 2, "Staging")
    assert (status, err.get("error_code")) == (403, "PERMISSION_DENIED"), err
    assert admin.history("fraud") == before
    assert admin.version("fraud@2")["stage"] == "none"
    ci = token("ci", "promote", models="fraud*")
    status, _ = mlflow_transition(daemon.url, ci.secret, "fraud", 2, "Staging")
    assert status == 200
    ci.transition("fraud@2", "production", reason="release")
    assert admin.version("fraud@2")["stage"] == "production"
