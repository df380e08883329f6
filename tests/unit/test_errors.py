"""Domain errors say what happened in words a user can act on."""

from foretell.errors import WorkerCrashed


def test_an_exit_code_is_reported_as_such() -> None:
    assert WorkerCrashed("a/b:1", 3).message == (
        "the replica of model 'a/b:1' exited (code 3) mid-prediction"
    )


def test_a_sigkill_is_named_with_its_usual_cause_and_what_to_do() -> None:
    message = WorkerCrashed("a/b:1", -9).message
    assert message.startswith("the replica of model 'a/b:1' was killed by SIGKILL mid-prediction")
    assert "out-of-memory killer" in message
    assert "max_batch_size" in message


def test_other_signals_are_named() -> None:
    assert WorkerCrashed("a/b:1", -15).message == (
        "the replica of model 'a/b:1' was killed by SIGTERM mid-prediction"
    )


def test_a_given_reason_replaces_the_exit_description() -> None:
    assert WorkerCrashed("a/b:1", None, "ran longer than 60 s").message == "ran longer than 60 s"
