"""KirchhoffNet topologies: edge lists of the FC, NE and Proj layers (paper Fig. 4), as networkx graphs.

Node 0 is ground; signal nodes are 1..N. An edge (s, d) is a branch whose current
g(v_s, v_d, theta) flows from s to d; parallel edges (``repeat``) are allowed and each has its
own parameters. :func:`validate` rejects self loops, out-of-range indices and output nodes that
no branch touches, naming the offending edge or node.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from ...errors import AnasimError


def fc(num_nodes: int, repeat: int = 1) -> list[tuple[int, int]]:
    """Every ordered pair of distinct nodes 1..N, ``repeat`` times."""
    return [(i, j) for i in range(1, num_nodes + 1) for j in range(1, num_nodes + 1) if i != j for _ in range(repeat)]


def ne(c: int, w: int, h: int, k: int, repeat: int = 1) -> list[tuple[int, int]]:
    """A k x k kernel slides over the c x w x h grid; nodes inside one kernel position are fully
    connected (pairs inside several positions get several edges)."""
    ind = np.arange(1, 1 + c * w * h).reshape(c, w, h)
    edges = []
    for x in range(w - k + 1):
        for y in range(h - k + 1):
            window = ind[:, x : x + k, y : y + k].reshape(-1)  # [c*k*k] nodes of this position
            edges += [(int(a), int(b)) for a in window for b in window if a != b for _ in range(repeat)]
    return edges


def proj(c: int, w: int, h: int, k: int, n: int, repeat: tuple[int, int] = (1, 1)) -> list[tuple[int, int]]:
    """NE layer plus ``n`` projected nodes, each connected both ways to every grid node."""
    edges = ne(c, w, h, k, repeat[0])
    m = c * w * h
    for p in range(m + 1, m + 1 + n):
        for j in range(1, m + 1):
            edges += [(p, j), (j, p)] * repeat[1]
    return edges


def to_ground(nodes, repeat: int = 1) -> list[tuple[int, int]]:
    """Branches from each node to ground (learnable leaks)."""
    return [(int(i), 0) for i in nodes for _ in range(repeat)]


def validate(edges, num_nodes: int, outputs=()) -> nx.MultiDiGraph:
    """The edge list as a graph, after checking it can be a circuit."""
    graph = nx.MultiDiGraph()
    graph.add_nodes_from(range(num_nodes + 1))
    for n, (s, d) in enumerate(edges):
        if s == d:
            raise AnasimError(f"edge {n} ({s} -> {d}) is a self loop; a branch needs two different nodes")
        for node in (s, d):
            if not 0 <= node <= num_nodes:
                raise AnasimError(f"edge {n} ({s} -> {d}): node {node} is out of range 0..{num_nodes}")
        graph.add_edge(s, d)
    for o in outputs:
        if not 1 <= o <= num_nodes:
            raise AnasimError(f"output node {o} is out of range 1..{num_nodes}")
        if graph.degree(o) == 0:
            raise AnasimError(f"output node {o} is dangling: no branch touches it, so it never changes")
    return graph
