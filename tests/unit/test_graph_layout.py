"""The layered DAG layout behind the workflow run graph (switchyard.workflows.graph_layout)."""

from __future__ import annotations

import random
from itertools import combinations

import pytest
from switchyard.workflows.graph_layout import Layout, LayoutOptions, layout

OPTIONS = LayoutOptions()


def fan_out(width: int) -> tuple[list[str], list[tuple[str, str]]]:
    middle = [f"shot_{i:02d}" for i in range(width)]
    nodes = ["root", *middle, "collage"]
    return nodes, [("root", m) for m in middle] + [(m, "collage") for m in middle]


def chain(length: int) -> tuple[list[str], list[tuple[str, str]]]:
    nodes = [f"step_{i}" for i in range(length)]
    return nodes, list(zip(nodes, nodes[1:], strict=False))


def random_dag(seed: int, size: int = 40) -> tuple[list[str], list[tuple[str, str]]]:
    """Steps in topological order, each depending on up to three earlier ones (as specs are written)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test graphs, not secrets
    nodes = [f"s{i}" for i in range(size)]
    edges = []
    for i in range(1, size):
        for dep in rng.sample(range(i), k=min(i, rng.choice([0, 1, 1, 2, 3]))):
            edges.append((nodes[dep], nodes[i]))
    return nodes, edges


def ladder(rungs: int) -> tuple[list[str], list[tuple[str, str]]]:
    """Two parallel chains with cross links and a skip edge: long edges through several rows."""
    nodes, edges = [], []
    for i in range(rungs):
        nodes += [f"l{i}", f"r{i}"]
        if i:
            edges += [(f"l{i - 1}", f"l{i}"), (f"r{i - 1}", f"r{i}"), (f"l{i - 1}", f"r{i}")]
    edges.append(("l0", f"r{rungs - 1}"))
    return nodes, edges


GRAPHS = {
    "single": (["only"], []),
    "diamond": (["a", "b", "c", "d"], [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]),
    "skip-edge": (["a", "b", "c"], [("a", "b"), ("b", "c"), ("a", "c")]),
    "two-roots": (["x", "y", "z"], [("x", "z"), ("y", "z")]),
    "fan-out-38": fan_out(38),
    "chain-40": chain(40),
    "ladder-20": ladder(20),
    **{f"random-{seed}": random_dag(seed) for seed in range(8)},
}


def assert_no_overlaps(drawn: Layout) -> None:
    for a, b in combinations(drawn.nodes.values(), 2):
        apart = a.x + a.width <= b.x or b.x + b.width <= a.x or a.y + a.height <= b.y or b.y + b.height <= a.y
        assert apart, f"{a.id} and {b.id} overlap: {a} {b}"


def assert_edges_point_down(drawn: Layout, edges: list[tuple[str, str]]) -> None:
    assert {(e.source, e.target) for e in drawn.edges} == set(edges)
    for edge in drawn.edges:
        source, target = drawn.nodes[edge.source], drawn.nodes[edge.target]
        assert target.layer > source.layer and target.row > source.row
        ys = [y for _x, y in edge.points]
        assert ys == sorted(ys), f"{edge.source}->{edge.target} goes up: {edge.points}"
        assert ys[0] == pytest.approx(source.bottom) and ys[-1] == pytest.approx(target.y)
        assert source.x <= edge.points[0][0] <= source.x + source.width
        assert target.x <= edge.points[-1][0] <= target.x + target.width


def assert_edges_miss_other_boxes(drawn: Layout) -> None:
    """Where an edge crosses a row (a vertical lane between two of its points), no box is in the way."""
    for edge in drawn.edges:
        lanes = [
            (x1, y1, y2)
            for (x1, y1), (x2, y2) in zip(edge.points, edge.points[1:], strict=False)
            if x1 == x2 and y2 > y1
        ]
        for x, top, bottom in lanes:
            for box in drawn.nodes.values():
                if box.id in (edge.source, edge.target):
                    continue
                crosses_row = box.y < bottom and top < box.y + box.height
                assert not (crosses_row and box.x < x < box.x + box.width), (
                    f"{edge.source}->{edge.target} runs through {box.id}"
                )


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_given_a_dag_when_laid_out_then_no_boxes_overlap(name):
    nodes, edges = GRAPHS[name]

    drawn = layout(nodes, edges)

    assert set(drawn.nodes) == set(nodes)
    assert_no_overlaps(drawn)


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_given_a_dag_when_laid_out_then_every_edge_points_down_the_layers(name):
    nodes, edges = GRAPHS[name]

    drawn = layout(nodes, edges)

    assert_edges_point_down(drawn, edges)
    assert_edges_miss_other_boxes(drawn)


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_given_a_dag_when_laid_out_then_everything_is_inside_the_drawing(name):
    nodes, edges = GRAPHS[name]

    drawn = layout(nodes, edges)

    for box in drawn.nodes.values():
        assert box.x >= OPTIONS.margin - 0.01 and box.y >= OPTIONS.margin - 0.01
        assert box.x + box.width <= drawn.width and box.y + box.height <= drawn.height
    for edge in drawn.edges:
        assert all(0 <= x <= drawn.width and 0 <= y <= drawn.height for x, y in edge.points)


def test_given_a_step_depending_on_two_layers_then_it_sits_below_the_deepest():
    drawn = layout(*GRAPHS["skip-edge"])

    assert [drawn.nodes[n].layer for n in ("a", "b", "c")] == [0, 1, 2]


def test_given_a_38_way_fan_out_then_it_wraps_into_rows_of_at_most_six_and_stays_readable():
    nodes, edges = fan_out(38)

    drawn = layout(nodes, edges)

    per_row: dict[int, int] = {}
    for box in drawn.nodes.values():
        per_row[box.row] = per_row.get(box.row, 0) + 1
    assert max(per_row.values()) <= OPTIONS.max_per_row
    assert sorted(per_row.values())[2:] == [5, 5, 5, 5, 6, 6, 6]  # balanced, not 6 x 6 + 2
    assert drawn.width <= 1500  # about a laptop screen, at full size
    assert drawn.height <= 1000


def test_given_a_wrapped_layer_then_its_rows_line_up_as_columns():
    drawn = layout(*fan_out(12))

    rows: dict[int, list[float]] = {}
    for node in fan_out(12)[0][1:-1]:
        rows.setdefault(drawn.nodes[node].row, []).append(drawn.nodes[node].x)
    first, second = (sorted(xs) for _row, xs in sorted(rows.items()))
    assert first == second


def test_given_40_steps_of_any_shape_then_the_drawing_stays_within_a_readable_size():
    for name in ("fan-out-38", "chain-40", *(f"random-{s}" for s in range(8))):
        drawn = layout(*GRAPHS[name])
        per_row: dict[int, int] = {}
        for box in drawn.nodes.values():
            per_row[box.row] = per_row.get(box.row, 0) + 1
        assert max(per_row.values()) <= OPTIONS.max_per_row, name
        # Random 40-step DAGs with edges across many layers are the worst case: side lanes widen them.
        assert drawn.width <= 2000, name
        # A 40-step chain is one column: tall, but every box keeps its full size.
        assert drawn.height <= 40 * (OPTIONS.node_height + OPTIONS.vertical_gap) + 2 * OPTIONS.margin, name


def test_given_crossing_edges_in_spec_order_then_the_layout_uncrosses_them():
    # In spec order the second row is [c, d] under [a, b], with a->d and b->c: one crossing.
    drawn = layout(["a", "b", "c", "d"], [("a", "d"), ("b", "c")])

    assert drawn.crossings == 0
    assert (drawn.nodes["a"].x < drawn.nodes["b"].x) == (drawn.nodes["d"].x < drawn.nodes["c"].x)


def test_given_a_single_child_then_it_is_centred_under_its_parent():
    drawn = layout(["a", "b"], [("a", "b")])

    assert drawn.nodes["a"].center_x == pytest.approx(drawn.nodes["b"].center_x)


def test_given_the_same_graph_twice_then_the_layout_is_the_same():
    nodes, edges = random_dag(3)

    assert layout(nodes, edges) == layout(nodes, edges)


def test_given_no_steps_then_the_layout_is_empty():
    drawn = layout([], [])

    assert drawn.nodes == {} and drawn.edges == ()


@pytest.mark.parametrize(
    ("edges", "message"),
    [
        ([("a", "b"), ("b", "a")], "cycle"),
        ([("a", "a")], "self-loop"),
        ([("a", "nope")], "unknown node"),
    ],
)
def test_given_a_graph_that_is_not_a_dag_then_layout_refuses_it(edges, message):
    with pytest.raises(ValueError, match=message):
        layout(["a", "b"], edges)
