"""A workflow run drawn as an SVG DAG: one box per step coloured by its status, with its timings; edges as
arrows. Served at GET /v1/workflows/runs/<id>/graph.svg and shown by the dashboard, so both see the same.

Every value that came from a user (step ids, descriptions, gate prompts, error messages) is escaped.
Only presentation attributes are used, no <style> and no script: the drawing is the same standalone
(an <img> in a README) and inline in the dashboard, whose Content-Security-Policy forbids inline styles.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

from switchyard.workflows.graph_layout import Layout, LayoutOptions, NodeBox, layout

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
HEADER_HEIGHT = 70
MIN_WIDTH = 420
# Average glyph widths of the fonts above at 13 px (bold) and 12 px: enough to truncate before overflow.
TITLE_CHAR_PX = 7.6
DETAIL_CHAR_PX = 6.4


@dataclass(frozen=True)
class Palette:
    fill: str
    stroke: str
    accent: str
    label: str
    dashed: bool = False


PALETTES = {
    "pending": Palette("#f8fafc", "#cbd5e1", "#94a3b8", "pending"),
    "waiting": Palette("#fffbeb", "#f59e0b", "#b45309", "waiting for approval"),
    "running": Palette("#eff6ff", "#3b82f6", "#1d4ed8", "running"),
    "succeeded": Palette("#f0fdf4", "#22c55e", "#15803d", "succeeded"),
    "failed": Palette("#fef2f2", "#ef4444", "#b91c1c", "failed"),
    "timed_out": Palette("#fef2f2", "#ef4444", "#b91c1c", "timed out"),
    "rejected": Palette("#fdf2f8", "#db2777", "#9d174d", "rejected"),
    "skipped": Palette("#f8fafc", "#cbd5e1", "#94a3b8", "skipped", dashed=True),
    "canceled": Palette("#f1f5f9", "#94a3b8", "#475569", "canceled", dashed=True),
}
RUN_COLOURS = {
    "RUNNING": "#1d4ed8",
    "SUCCEEDED": "#15803d",
    "FAILED": "#b91c1c",
    "REJECTED": "#9d174d",
    "CANCELED": "#475569",
}
KIND_LABELS = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "completion",
    "/v1/images/generations": "image",
    "/v1/audio/speech": "speech",
    "/v1/music/generations": "music",
    "/v1/videos/generations": "video",
    "/v1/3d/generations": "3D mesh",
}


def render_run_svg(run: dict[str, Any], *, now: datetime | None = None) -> str:
    """The SVG document for a run as `WorkflowsService.view` returns it."""
    now = now or datetime.now(UTC)
    steps = run.get("steps") or []
    edges = [(e["from"], e["to"]) for e in run.get("edges") or []]
    drawn = layout([s["id"] for s in steps], edges, LayoutOptions())
    width = max(MIN_WIDTH, drawn.width)
    height = drawn.height + HEADER_HEIGHT
    by_id = {s["id"]: s for s in steps}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:g}" height="{height:g}" '
        f'viewBox="0 0 {width:g} {height:g}" font-family="{escape(FONT)}" role="img" '
        f'aria-label="{_attr(_aria_label(run))}" data-run-id="{_attr(run.get("id"))}" '
        f'data-run-status="{_attr(run.get("status"))}">',
        f"<title>{_text(_aria_label(run))}</title>",
        _defs(),
        f'<rect x="0" y="0" width="{width:g}" height="{height:g}" fill="#ffffff"/>',
        _header(run, width),
        # A drawing narrower than the header's minimum is centred under it.
        f'<g transform="translate({(width - drawn.width) / 2:g},{HEADER_HEIGHT})">',
        _edges(drawn, by_id),
        *(_node(drawn.nodes[s["id"]], s, now) for s in steps),
        "</g>",
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------- parts


def _defs() -> str:
    arrow = '<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/>'
    return (
        "<defs>"
        '<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto-start-reverse">{arrow.format(colour="#94a3b8")}</marker>'
        '<marker id="arrow-done" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto-start-reverse">{arrow.format(colour="#16a34a")}</marker>'
        "</defs>"
    )


def _header(run: dict[str, Any], width: float) -> str:
    """Two lines: what the run is, then its status, progress and id (fits the narrowest drawing)."""
    status = str(run.get("status") or "")
    colour = RUN_COLOURS.get(status, "#475569")
    counts = run.get("step_counts") or {}
    total = int(run.get("step_count") or len(run.get("steps") or []))
    done = sum(n for s, n in counts.items() if s not in ("pending", "waiting", "running"))
    title = _truncate(str(run.get("template") or "Workflow run"), (width - 40) / 8.6)
    pill_width = 14 + len(status) * 7.6
    progress = f"{done}/{total} steps finished"
    run_id = _truncate(str(run.get("id") or ""), (width - 40 - pill_width - 150) / 6.6)
    return (
        f'<text x="20" y="27" font-size="15" font-weight="600" fill="#0f172a">{_text(title)}</text>'
        f'<g transform="translate(20,38)">'
        f'<rect width="{pill_width:g}" height="20" rx="10" fill="{colour}" fill-opacity="0.12"/>'
        f'<text x="{pill_width / 2:g}" y="14" font-size="11" font-weight="700" fill="{colour}" '
        f'text-anchor="middle" letter-spacing="0.4">{_text(status)}</text>'
        f'<text x="{pill_width + 10:g}" y="14.5" font-size="12" fill="#64748b">{_text(progress)}</text>'
        f'<text x="{pill_width + 140:g}" y="14.5" font-size="11.5" fill="#94a3b8" '
        f"font-family=\"ui-monospace, 'SFMono-Regular', Menlo, Consolas, monospace\">{_text(run_id)}</text>"
        "</g>"
        f'<line x1="0" y1="{HEADER_HEIGHT - 0.5}" x2="{width:g}" y2="{HEADER_HEIGHT - 0.5}" '
        'stroke="#e2e8f0"/>'
    )


def _edges(drawn: Layout, by_id: dict[str, dict[str, Any]]) -> str:
    out = ['<g fill="none" stroke-width="1.6">']
    for edge in drawn.edges:
        source_done = (by_id.get(edge.source) or {}).get("status") == "succeeded"
        target_status = (by_id.get(edge.target) or {}).get("status")
        colour, marker = ("#16a34a", "arrow-done") if source_done else ("#94a3b8", "arrow")
        dash = ' stroke-dasharray="4 4"' if target_status in ("skipped", "canceled") else ""
        out.append(
            f'<path d="{_curve(edge.points)}" stroke="{colour}"{dash} marker-end="url(#{marker})" '
            f'data-from="{_attr(edge.source)}" data-to="{_attr(edge.target)}"/>'
        )
    out.append("</g>")
    return "".join(out)


def _curve(points: tuple[tuple[float, float], ...]) -> str:
    """Cubic segments with vertical tangents: edges leave and enter boxes straight down."""
    (x0, y0), rest = points[0], points[1:]
    d = [f"M{x0:g},{y0:g}"]
    for x1, y1 in rest:
        if x1 == x0:
            d.append(f"L{x1:g},{y1:g}")
        else:
            bend = (y1 - y0) / 2
            d.append(f"C{x0:g},{y0 + bend:g} {x1:g},{y1 - bend:g} {x1:g},{y1:g}")
        x0, y0 = x1, y1
    return " ".join(d)


def _node(box: NodeBox, step: dict[str, Any], now: datetime) -> str:
    status = str(step.get("status") or "pending")
    palette = PALETTES.get(status, PALETTES["pending"])
    kind = "gate" if step.get("type") == "gate" else KIND_LABELS.get(step.get("endpoint") or "", "step")
    detail = _truncate(f"{kind} · {_timing(step, now)}", (box.width - 28) / DETAIL_CHAR_PX)
    title = _truncate(str(step.get("id", "")), (box.width - 40) / TITLE_CHAR_PX)
    dash = ' stroke-dasharray="5 4"' if palette.dashed else ""
    stroke_width = 2.2 if status in ("waiting", "running") else 1.4
    return (
        f'<g class="step" data-step-id="{_attr(step.get("id"))}" data-status="{_attr(status)}" '
        f'data-type="{_attr(step.get("type"))}" transform="translate({box.x:g},{box.y:g})">'
        f"<title>{_text(_tooltip(step, palette))}</title>"
        f'<rect width="{box.width:g}" height="{box.height:g}" rx="10" fill="{palette.fill}" '
        f'stroke="{palette.stroke}" stroke-width="{stroke_width}"{dash}/>'
        f'<circle cx="18" cy="21" r="5" fill="{palette.accent}"/>'
        f'<text x="30" y="25.5" font-size="13" font-weight="600" fill="#0f172a">{_text(title)}</text>'
        f'<text x="14" y="44" font-size="12" fill="{palette.accent}">{_text(detail)}</text>'
        "</g>"
    )


def _timing(step: dict[str, Any], now: datetime) -> str:
    """What a box has room for: its state in a word or two, and how long it took or has left."""
    status = str(step.get("status") or "pending")
    gate = step.get("type") == "gate"
    started, finished = _parse(step.get("started_at")), _parse(step.get("finished_at"))
    if status == "waiting":
        expires = _parse((step.get("gate") or {}).get("expires_at"))
        return f"waiting · {_coarse((expires - now).total_seconds())} left" if expires else "waiting"
    if status == "running":
        return f"running {_duration((now - started).total_seconds())}" if started else "running"
    took = step.get("duration_ms")
    seconds = (
        took / 1000
        if took is not None
        else (finished - started).total_seconds()
        if started and finished
        else None
    )
    words = {
        "succeeded": "approved in" if gate else "done in",
        "failed": "failed after",
        "timed_out": "timed out after",
        "rejected": "rejected after",
    }
    if status in words and seconds is not None:
        return f"{words[status]} {_duration(seconds)}"
    return PALETTES.get(status, PALETTES["pending"]).label


def _tooltip(step: dict[str, Any], palette: Palette) -> str:
    lines = [f"{step.get('id')}: {palette.label}"]
    if step.get("description"):
        lines.append(str(step["description"]))
    gate = step.get("gate") or {}
    if gate.get("prompt"):
        lines.append(f"Gate: {gate['prompt']}")
    if gate.get("expires_at") and step.get("status") == "waiting":
        lines.append(f"Expires {gate['expires_at']}")
    error = step.get("error")
    if isinstance(error, dict) and error.get("message"):
        lines.append(f"Error: {error['message']}")
    return "\n".join(lines)


def _aria_label(run: dict[str, Any]) -> str:
    return f"Workflow run {run.get('id', '')}: {run.get('status', '')}"


# ---------------------------------------------------------------- helpers


def _text(value: Any) -> str:
    return escape(_printable(str(value if value is not None else "")), quote=False)


def _attr(value: Any) -> str:
    return escape(_printable(str(value if value is not None else "")), quote=True)


def _printable(value: str) -> str:
    # XML 1.0 forbids most control characters even when escaped, and JSON text can carry lone surrogates
    # (which UTF-8 cannot encode): a prompt could hold any of them.
    return "".join(
        ch
        if ch in "\t\n\r" or (0x20 <= ord(ch) < 0xD800) or (0xE000 <= ord(ch) < 0xFFFE) or ord(ch) > 0xFFFF
        else "\ufffd"
        for ch in value
    )


def _truncate(value: str, max_chars: float) -> str:
    limit = max(1, int(max_chars))
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _coarse(seconds: float) -> str:
    """One unit, rounded down: what a box has room for ("6 d", "23 h", "12 min")."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{max(0, int(seconds))} s"


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 60:
        return f"{int(minutes)} min {int(seconds % 60)} s" if minutes < 10 else f"{int(minutes)} min"
    hours = minutes / 60
    if hours < 48:
        return f"{int(hours)} h {int(minutes % 60)} min"
    return f"{int(hours / 24)} d"
