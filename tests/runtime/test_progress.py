"""Long work reports through a callback (runtime/progress.py), never the console."""

from __future__ import annotations

from slmkit.runtime.progress import ProgressEvent, Steps


def test_steps_report_every_change_with_a_stable_id() -> None:
    events: list[ProgressEvent] = []
    steps = Steps(events.append)
    writing = steps.start("Writing F16 GGUF", total=300)
    loading = steps.start("Loading", transient=True)
    writing.advance(100)
    writing.describe("Writing F16 GGUF (layer 2)")
    writing.finish()
    loading.finish()
    assert [e.step for e in events] == [writing._event.step, loading._event.step, *[writing._event.step] * 3,
                                        loading._event.step]
    assert events[0].completed == 0 and events[0].total == 300 and not events[0].done
    assert events[2].completed == 100 and events[3].description.endswith("(layer 2)")
    assert events[4].done and events[4].completed == 300 and not events[4].transient
    assert events[5].done and events[5].transient and events[5].total is None


def test_no_callback_reports_nothing() -> None:
    step = Steps().start("quiet", total=2)
    step.advance()
    step.finish()
    assert step._event.done and step._event.completed == 2


def test_library_code_never_draws_on_the_console() -> None:
    """Conversion, parity and packaging report through Steps and return results; only the CLI draws
    (cli/progress.py, cli/convert.py)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for path in [*(root / "converter").rglob("*.py"), *(root / "runtime").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        assert "from rich" not in text and "import rich" not in text, path.relative_to(root)
