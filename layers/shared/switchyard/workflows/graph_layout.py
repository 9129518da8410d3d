"""A small layered (Sugiyama-style) layout for workflow DAGs: where each step's box goes, where each
edge runs. Pure: no I/O, no SVG; `graph_svg` draws what this computes, and the dashboard shows that.

The steps, in order:
1. Layers by longest path: a step sits one layer below its deepest dependency, so every edge points down.
2. Rows: a layer wider than `max_per_row` wraps onto several rows (a 38-way fan-out becomes 7 rows of at
   most 6 instead of one row 7,000 px wide); a row holds steps of one layer only, so edges still point down.
3. Edges spanning several rows get a narrow virtual box on every row they cross, so they are routed
   between boxes, never through one.
4. Crossing reduction: barycenter sweeps down and up, keeping the order with the fewest crossings.
5. X positions: each row is placed as close as possible to the centres of its neighbours in the row
   above (then below), never closer than the gaps allow; per row that is an isotonic regression, solved
   exactly by pool-adjacent-violators.
Runs are capped at 40 steps (workflows.model.MAX_STEPS), so the quadratic parts cost nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LayoutOptions:
    node_width: float = 200.0
    node_height: float = 56.0
    horizontal_gap: float = 28.0  # between two boxes of a row
    vertical_gap: float = 44.0  # between two rows (where the edges bend)
    virtual_width: float = 10.0  # the slot an edge takes on a row it crosses
    margin: float = 20.0
    max_per_row: int = 6
    sweeps: int = 12
    # How strongly a box stays where packing put it (each row centred on one axis), against its
    # neighbours' pull: without it, long edges leaning one way drag row after row into a staircase.
    home_pull: float = 0.5


@dataclass(frozen=True)
class NodeBox:
    id: str
    x: float  # left
    y: float  # top
    width: float
    height: float
    layer: int
    row: int

    @property
    def center_x(self) -> float:
        return self.x + self.width / 2

    @property
    def bottom(self) -> float:
        return self.y + self.height


@dataclass(frozen=True)
class EdgeRoute:
    source: str
    target: str
    points: tuple[
        tuple[float, float], ...
    ]  # from the source's bottom to the target's top, y never decreasing


@dataclass(frozen=True)
class Layout:
    width: float
    height: float
    nodes: dict[str, NodeBox]
    edges: tuple[EdgeRoute, ...]
    rows: int = 0
    crossings: int = 0


@dataclass
class _Vertex:
    id: str
    row: int
    width: float
    real: bool
    up: list[str] = field(default_factory=list)  # neighbours in the row above
    down: list[str] = field(default_factory=list)  # neighbours in the row below
    layer: int = -1
    x: float = 0.0  # centre


def layout(
    node_ids: Sequence[str],
    edges: Iterable[tuple[str, str]],
    options: LayoutOptions | None = None,
) -> Layout:
    """Lay out a DAG. `node_ids` in any order (ties keep it); `edges` as (dependency, dependent).

    Raises ValueError for an unknown node, a self-loop or a cycle (specs are validated long before, so
    that is a bug, not a user error).
    """
    opts = options or LayoutOptions()
    ids = list(dict.fromkeys(node_ids))
    order = {node: i for i, node in enumerate(ids)}
    edge_list = list(dict.fromkeys(edges))
    for source, target in edge_list:
        if source not in order or target not in order:
            raise ValueError(f"edge {source!r} -> {target!r} names an unknown node")
        if source == target:
            raise ValueError(f"self-loop on {source!r}")
    if not ids:
        return Layout(width=2 * opts.margin, height=2 * opts.margin, nodes={}, edges=())

    layers = _longest_path_layers(ids, edge_list)
    row_of, rows = _wrap_rows(ids, edge_list, layers, order, opts.max_per_row)
    vertices, chains = _add_virtual_vertices(ids, edge_list, row_of, opts)
    for node in ids:
        vertices[node].layer = layers[node]
    rows = [list(r) for r in rows]
    for vertex in vertices.values():
        if not vertex.real:
            rows[vertex.row].append(vertex.id)
    rows, _ = _reduce_crossings(rows, vertices, opts.sweeps)
    _assign_x(rows, vertices, opts)
    crossings = _count_crossings(rows, vertices)

    row_y = [opts.margin + r * (opts.node_height + opts.vertical_gap) for r in range(len(rows))]
    left = min(v.x - v.width / 2 for v in vertices.values())
    shift = opts.margin - left
    for vertex in vertices.values():
        vertex.x += shift

    boxes = {
        node: NodeBox(
            id=node,
            x=vertices[node].x - opts.node_width / 2,
            y=row_y[vertices[node].row],
            width=opts.node_width,
            height=opts.node_height,
            layer=layers[node],
            row=vertices[node].row,
        )
        for node in ids
    }
    routes = _route_edges(edge_list, chains, vertices, boxes, row_y, opts)
    width = max(v.x + v.width / 2 for v in vertices.values()) + opts.margin
    height = row_y[-1] + opts.node_height + opts.margin
    return Layout(
        width=math.ceil(width),
        height=math.ceil(height),
        nodes=boxes,
        edges=routes,
        rows=len(rows),
        crossings=crossings,
    )


# ---------------------------------------------------------------- 1. layers


def _longest_path_layers(ids: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    parents: dict[str, list[str]] = {node: [] for node in ids}
    children: dict[str, list[str]] = {node: [] for node in ids}
    for source, target in edges:
        parents[target].append(source)
        children[source].append(target)
    remaining = {node: len(parents[node]) for node in ids}
    ready = [node for node in ids if remaining[node] == 0]
    layers: dict[str, int] = {}
    while ready:
        node = ready.pop(0)
        layers[node] = max((layers[p] + 1 for p in parents[node]), default=0)
        for child in children[node]:
            remaining[child] -= 1
            if remaining[child] == 0:
                ready.append(child)
    if len(layers) != len(ids):
        cyclic = sorted(node for node in ids if node not in layers)
        raise ValueError(f"the graph has a cycle through {', '.join(cyclic)}")
    # A step with no dependencies goes just above its first dependent, not up at the top with an edge
    # crossing every layer in between.
    for node in ids:
        if not parents[node] and children[node]:
            layers[node] = min(layers[c] for c in children[node]) - 1
    return layers


# ---------------------------------------------------------------- 2. rows


def _wrap_rows(
    ids: list[str],
    edges: list[tuple[str, str]],
    layers: dict[str, int],
    order: dict[str, int],
    max_per_row: int,
) -> tuple[dict[str, int], list[list[str]]]:
    """Each layer becomes ceil(n / max_per_row) balanced rows; steps are ordered by where their
    dependencies sit (so a fan-out's children stay under their parent), then by spec order."""
    parents: dict[str, list[str]] = {node: [] for node in ids}
    for source, target in edges:
        parents[target].append(source)
    position: dict[str, float] = {}
    row_of: dict[str, int] = {}
    rows: list[list[str]] = []
    for layer in range(max(layers.values()) + 1):
        members = [node for node in ids if layers[node] == layer]

        def key(node: str) -> tuple[float, int]:
            placed = [position[p] for p in parents[node]]
            return (sum(placed) / len(placed) if placed else order[node], order[node])

        members.sort(key=key)
        count = math.ceil(len(members) / max(1, max_per_row))
        start = 0
        for chunk_index in range(count):  # sizes differ by at most one: 38 -> 6, 6, 6, 5, 5, 5, 5
            size = len(members) // count + (1 if chunk_index < len(members) % count else 0)
            chunk = members[start : start + size]
            start += size
            for index, node in enumerate(chunk):
                row_of[node] = len(rows)
                position[node] = index
            rows.append(chunk)
    return row_of, rows


# ---------------------------------------------------------------- 3. virtual vertices


def _add_virtual_vertices(
    ids: list[str], edges: list[tuple[str, str]], row_of: dict[str, int], opts: LayoutOptions
) -> tuple[dict[str, _Vertex], dict[tuple[str, str], list[str]]]:
    """Long edges of one step share their virtual vertices (a trunk): the edges of a 38-way fan-out that
    wrapped onto 7 rows run down one trunk instead of squeezing 32 lanes between the boxes. An edge
    joins its source's trunk, or its target's when more long edges end there than leave its source."""
    vertices = {node: _Vertex(node, row_of[node], opts.node_width, real=True) for node in ids}
    long_edges = [(s, t) for s, t in edges if row_of[t] - row_of[s] > 1]
    long_out = {node: 0 for node in ids}
    long_in = {node: 0 for node in ids}
    for source, target in long_edges:
        long_out[source] += 1
        long_in[target] += 1
    chains: dict[tuple[str, str], list[str]] = {}
    for source, target in edges:
        owner, side = (target, "in") if long_in[target] > long_out[source] else (source, "out")
        chain = [source]
        for row in range(row_of[source] + 1, row_of[target]):
            virtual_id = f"\0{side}\0{owner}\0{row}"  # NUL cannot occur in a step id
            if virtual_id not in vertices:
                vertices[virtual_id] = _Vertex(virtual_id, row, opts.virtual_width, real=False)
            chain.append(virtual_id)
        chain.append(target)
        for upper, lower in zip(chain, chain[1:], strict=False):
            if lower not in vertices[upper].down:
                vertices[upper].down.append(lower)
                vertices[lower].up.append(upper)
        chains[(source, target)] = chain
    return vertices, chains


# ---------------------------------------------------------------- 4. crossings


def _reduce_crossings(
    rows: list[list[str]], vertices: dict[str, _Vertex], sweeps: int
) -> tuple[list[list[str]], int]:
    best = [list(r) for r in rows]
    best_crossings = _count_crossings(best, vertices)
    current = [list(r) for r in rows]
    for sweep in range(sweeps):
        if best_crossings == 0:
            break
        downward = sweep % 2 == 0
        indices = range(1, len(current)) if downward else range(len(current) - 2, -1, -1)
        for r in indices:
            reference = current[r - 1] if downward else current[r + 1]
            place = {vertex_id: i for i, vertex_id in enumerate(reference)}
            row = current[r]
            keys = {v: _barycenter(vertices[v], row, place, downward, len(reference)) for v in row}
            current[r] = sorted(row, key=keys.__getitem__)
        crossings = _count_crossings(current, vertices)
        if crossings < best_crossings:
            best, best_crossings = [list(r) for r in current], crossings
    return best, best_crossings


def _count_crossings(rows: list[list[str]], vertices: dict[str, _Vertex]) -> int:
    total = 0
    for upper, lower in zip(rows, rows[1:], strict=False):
        upper_place = {v: i for i, v in enumerate(upper)}
        lower_place = {v: i for i, v in enumerate(lower)}
        segments = sorted(
            (upper_place[v], lower_place[d]) for v in upper for d in vertices[v].down if d in lower_place
        )
        for i, (a_top, a_bottom) in enumerate(segments):
            for b_top, b_bottom in segments[i + 1 :]:
                if b_top > a_top and b_bottom < a_bottom:
                    total += 1
    return total


# ---------------------------------------------------------------- 5. x positions


def _barycenter(
    vertex: _Vertex, row: list[str], place: dict[str, int], downward: bool, reference_size: int
) -> float:
    """Where `vertex` wants to sit in its row: the mean place of its neighbours in the reference row."""
    neighbours = vertex.up if downward else vertex.down
    placed = [place[n] for n in neighbours if n in place]
    if not placed:
        # Keep it where it is, on the scale of the reference row.
        return row.index(vertex.id) * max(1, reference_size) / max(1, len(row))
    return sum(placed) / len(placed)


def _assign_x(rows: list[list[str]], vertices: dict[str, _Vertex], opts: LayoutOptions) -> None:
    """Centres for every vertex. A plain row is pulled towards the centres of its neighbours above and
    below; sweeping down and up in turn lets a change travel the whole height of the graph. The rows of
    one wrapped layer move as one block (see `_place_block`)."""
    blocks = _wrapped_blocks(rows, vertices)
    follower_rows = {r for block in blocks.values() for r in block[1:]}
    _pack_centred(rows, vertices, opts)
    home = {v.id: v.x for v in vertices.values()}
    for sweep in range(opts.sweeps):
        downward = sweep % 2 == 0
        indices = range(len(rows)) if downward else range(len(rows) - 1, -1, -1)
        for r in indices:
            if r in follower_rows:
                continue
            if r in blocks:
                _place_block([rows[i] for i in blocks[r]], vertices, opts, home)
                continue
            row = [vertices[v] for v in rows[r]]
            desired, weights = [], []
            for vertex in row:
                pulls = [(vertices[n].x, 1.0) for n in vertex.up + vertex.down]
                pulls.append((home[vertex.id], opts.home_pull * max(1, len(pulls))))
                total = sum(w for _x, w in pulls)
                desired.append(sum(x * w for x, w in pulls) / total)
                # Virtual vertices pull harder: long edges come out straight.
                weights.append(1.0 if vertex.real else 4.0)
            gaps = [_gap(a, b, opts) for a, b in zip(row, row[1:], strict=False)]
            for vertex, x in zip(row, _place_row(desired, weights, gaps), strict=True):
                vertex.x = x
    for ids in rows:  # the order the drawing shows
        ids.sort(key=lambda v: vertices[v].x)


def _gap(left: _Vertex, right: _Vertex, opts: LayoutOptions) -> float:
    spacing = opts.horizontal_gap if (left.real and right.real) else opts.horizontal_gap / 2
    return left.width / 2 + spacing + right.width / 2


def _pack_centred(rows: list[list[str]], vertices: dict[str, _Vertex], opts: LayoutOptions) -> None:
    def used(row: list[str]) -> float:
        return sum(vertices[v].width for v in row) + opts.horizontal_gap * (len(row) - 1)

    widest = max(used(row) for row in rows)
    for row in rows:
        x = (widest - used(row)) / 2
        for vertex_id in row:
            vertex = vertices[vertex_id]
            vertex.x = x + vertex.width / 2
            x += vertex.width + opts.horizontal_gap


def _wrapped_blocks(rows: list[list[str]], vertices: dict[str, _Vertex]) -> dict[int, list[int]]:
    """First row -> all rows, for every layer that wrapped onto more than one row."""
    layer_of_row = [next(vertices[v].layer for v in row if vertices[v].real) for row in rows]
    blocks: dict[int, list[int]] = {}
    start = 0
    for r in range(1, len(rows) + 1):
        if r == len(rows) or layer_of_row[r] != layer_of_row[start]:
            if r - start > 1:
                blocks[start] = list(range(start, r))
            start = r
    return blocks


def _place_block(
    block_rows: list[list[str]], vertices: dict[str, _Vertex], opts: LayoutOptions, home: dict[str, float]
) -> None:
    """A wrapped layer reads as a grid: step j of every row sits in column j, the columns are placed
    like one row (pulled by all their steps' neighbours outside the block), and the edges that cross
    the block run down lanes at its sides: trunks of edges leaving a step above on the right, trunks of
    edges converging on a step below on the left. So no edge crosses a box and the block cannot drift."""
    real_rows = [[v for v in row if vertices[v].real] for row in block_rows]
    inside = {v for row in block_rows for v in row}
    columns = [[row[j] for row in real_rows if j < len(row)] for j in range(max(len(r) for r in real_rows))]
    desired, weights = [], []
    for members in columns:
        pulls = [
            (vertices[n].x, 1.0)
            for member in members
            for n in vertices[member].up + vertices[member].down
            if n not in inside
        ]
        column_home = sum(home[m] for m in members) / len(members)
        pulls.append((column_home, opts.home_pull * max(1, len(pulls))))
        total = sum(w for _x, w in pulls)
        desired.append(sum(x * w for x, w in pulls) / total)
        weights.append(float(len(members)))
    gaps = [opts.node_width + opts.horizontal_gap] * (len(columns) - 1)
    placed = _place_row(desired, weights, gaps)
    for members, x in zip(columns, placed, strict=True):
        for member in members:
            vertices[member].x = x

    lanes: dict[str, list[tuple[str, str]]] = {"in": [], "out": []}
    for vertex_id in sorted(v for v in inside if not vertices[v].real):
        _nul, side, owner, _row = vertex_id.split("\0")
        if (owner, vertex_id) not in lanes[side]:
            lanes[side].append((owner, vertex_id))
    step = opts.virtual_width + opts.horizontal_gap / 2
    edge_offset = opts.node_width / 2 + opts.horizontal_gap / 2 + opts.virtual_width / 2
    for side, sign, anchor in (("out", 1, placed[-1]), ("in", -1, placed[0])):
        owners = list(dict.fromkeys(owner for owner, _v in lanes[side]))
        for owner, vertex_id in lanes[side]:
            vertices[vertex_id].x = anchor + sign * (edge_offset + owners.index(owner) * step)


def _place_row(desired: list[float], weights: list[float], gaps: list[float]) -> list[float]:
    """Positions minimising sum(w * (x - desired)^2) with x[i+1] - x[i] >= gaps[i] (pool adjacent
    violators on the positions shifted by their cumulative gaps)."""
    offsets = [0.0]
    for g in gaps:
        offsets.append(offsets[-1] + g)
    targets = [d - o for d, o in zip(desired, offsets, strict=True)]
    blocks: list[list[float]] = []  # [weighted mean, total weight, count]
    for target, weight in zip(targets, weights, strict=True):
        blocks.append([target, weight, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean_b, weight_b, count_b = blocks.pop()
            mean_a, weight_a, count_a = blocks.pop()
            total = weight_a + weight_b
            blocks.append([(mean_a * weight_a + mean_b * weight_b) / total, total, count_a + count_b])
    shifted: list[float] = []
    for mean, _weight, count in blocks:
        shifted.extend([mean] * int(count))
    return [s + o for s, o in zip(shifted, offsets, strict=True)]


# ---------------------------------------------------------------- edges


def _route_edges(
    edges: list[tuple[str, str]],
    chains: dict[tuple[str, str], list[str]],
    vertices: dict[str, _Vertex],
    boxes: dict[str, NodeBox],
    row_y: list[float],
    opts: LayoutOptions,
) -> tuple[EdgeRoute, ...]:
    """Edges leave a box's bottom and enter a box's top at ports spread along the side, ordered by where
    the other end lies, so arrows into one step do not pile onto one point."""
    out_ports = _ports(edges, chains, vertices, boxes, outgoing=True)
    in_ports = _ports(edges, chains, vertices, boxes, outgoing=False)
    routes = []
    for source, target in edges:
        chain = chains[(source, target)]
        points: list[tuple[float, float]] = [(out_ports[(source, target)], boxes[source].bottom)]
        for vertex_id in chain[1:-1]:
            vertex = vertices[vertex_id]
            top = row_y[vertex.row]
            points.append((vertex.x, top))
            points.append((vertex.x, top + opts.node_height))
        points.append((in_ports[(source, target)], boxes[target].y))
        routes.append(EdgeRoute(source, target, tuple((round(x, 1), round(y, 1)) for x, y in points)))
    return tuple(routes)


def _ports(
    edges: list[tuple[str, str]],
    chains: dict[tuple[str, str], list[str]],
    vertices: dict[str, _Vertex],
    boxes: dict[str, NodeBox],
    *,
    outgoing: bool,
) -> dict[tuple[str, str], float]:
    """Edges that leave (or enter) through the same neighbour, a shared trunk, share one port."""
    by_node: dict[str, dict[str, list[tuple[str, str]]]] = {}
    for edge in edges:
        chain = chains[edge]
        node, other = (chain[0], chain[1]) if outgoing else (chain[-1], chain[-2])
        by_node.setdefault(node, {}).setdefault(other, []).append(edge)
    ports: dict[tuple[str, str], float] = {}
    for node, through in by_node.items():
        box = boxes[node]
        neighbours = sorted(through, key=lambda other: (vertices[other].x, other))
        usable = box.width * 0.6  # keep ports off the rounded corners
        for i, other in enumerate(neighbours):
            for edge in through[other]:
                ports[edge] = box.center_x - usable / 2 + usable * (i + 1) / (len(neighbours) + 1)
    return ports
