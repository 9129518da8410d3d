"""The SVG drawing of a workflow run (switchyard.workflows.graph_svg)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from switchyard.workflows.graph_svg import render_run_svg

SVG = "{http://www.w3.org/2000/svg}"
NOW = datetime(2026, 6, 13, 12, 0, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def a_run(**step_overrides) -> dict:
    steps = [
        {
            "id": "outline",
            "type": "inference",
            "endpoint": "/v1/chat/completions",
            "status": "succeeded",
            "depends_on": [],
            "started_at": iso(NOW - timedelta(seconds=5)),
            "finished_at": iso(NOW - timedelta(seconds=3)),
            "duration_ms": 1500,
        },
        {
            "id": "review",
            "type": "gate",
            "status": "waiting",
            "depends_on": ["outline"],
            "started_at": iso(NOW - timedelta(seconds=3)),
            "gate": {"prompt": "Publish it?", "expires_at": iso(NOW + timedelta(days=6, hours=1))},
            **step_overrides,
        },
        {
            "id": "picture",
            "type": "inference",
            "endpoint": "/v1/images/generations",
            "status": "pending",
            "depends_on": ["review"],
        },
    ]
    return {
        "id": "run_1",
        "status": "RUNNING",
        "template": "illustrated-narration",
        "step_count": 3,
        "step_counts": {"succeeded": 1, "waiting": 1, "pending": 1},
        "steps": steps,
        "edges": [{"from": "outline", "to": "review"}, {"from": "review", "to": "picture"}],
    }


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own renderer's output


def steps_of(root: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-step-id"): g for g in root.iter(f"{SVG}g") if g.get("class") == "step"}


def texts(element: ET.Element) -> list[str]:
    return [t.text or "" for t in element.iter(f"{SVG}text")]


def test_given_a_run_then_each_step_is_one_box_with_its_status_and_timing():
    root = parse(render_run_svg(a_run(), now=NOW))

    boxes = steps_of(root)
    assert set(boxes) == {"outline", "review", "picture"}
    assert {k: g.get("data-status") for k, g in boxes.items()} == {
        "outline": "succeeded",
        "review": "waiting",
        "picture": "pending",
    }
    assert "chat · done in 1.5 s" in texts(boxes["outline"])
    assert "gate · waiting · 6 d left" in texts(boxes["review"])
    assert "image · pending" in texts(boxes["picture"])


def test_given_a_run_then_every_edge_is_an_arrow_between_its_steps():
    root = parse(render_run_svg(a_run(), now=NOW))

    arrows = [p for p in root.iter(f"{SVG}path") if p.get("data-from")]
    assert {(p.get("data-from"), p.get("data-to")) for p in arrows} == {
        ("outline", "review"),
        ("review", "picture"),
    }
    assert all(p.get("marker-end", "").startswith("url(#arrow") for p in arrows)


def test_given_a_running_step_then_it_shows_how_long_it_has_run():
    run = a_run(status="running", type="inference", endpoint="/v1/audio/speech", gate=None)

    root = parse(render_run_svg(run, now=NOW))

    assert "speech · running 3.0 s" in texts(steps_of(root)["review"])


def test_given_markup_in_user_values_then_it_is_text_not_markup():
    attack = '<script>alert(1)</script><foreignObject onload="x()">&amp;"'
    run = a_run(description=attack, error={"type": "x", "message": attack})
    run["steps"][1]["gate"]["prompt"] = attack
    run["template"] = attack

    svg = render_run_svg(run, now=NOW)

    root = parse(svg)  # still well-formed XML
    assert "<script" not in svg and "<foreignObject" not in svg
    assert not [e for e in root.iter() if e.tag in (f"{SVG}script", f"{SVG}foreignObject")]
    assert not [name for e in root.iter() for name in e.attrib if name.lower().startswith("on")]
    tooltip = steps_of(root)["review"].find(f"{SVG}title").text
    assert attack in tooltip  # shown to people as the text it is


def test_given_control_characters_in_a_prompt_then_the_svg_is_still_well_formed():
    run = a_run()
    run["steps"][1]["gate"]["prompt"] = "bell \x07 and a lone surrogate \ud800"

    svg = render_run_svg(run, now=NOW)

    parse(svg)
    svg.encode("utf-8")


def test_given_the_drawing_then_it_needs_no_style_sheet_and_no_script():
    svg = render_run_svg(a_run(), now=NOW)

    root = parse(svg)
    assert not [e for e in root.iter() if e.tag in (f"{SVG}style", f"{SVG}script")]
    assert not [e for e in root.iter() if "style" in e.attrib]
    assert root.get("width") and root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"


def test_given_a_long_step_id_then_it_is_shortened_to_fit_its_box():
    run = a_run()
    long_id = "a_step_identifier_that_is_much_too_long_for_its_box"
    run["steps"][2]["id"] = long_id
    run["edges"][1]["to"] = long_id

    root = parse(render_run_svg(run, now=NOW))

    title = texts(steps_of(root)[long_id])[0]
    assert title.endswith("…") and len(title) < 25
