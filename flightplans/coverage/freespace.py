"""Shortest paths inside a polygon with holes: a visibility graph over its reflex corners, slightly inset.

Only sight lines that graze the corners at their ends are tested and kept (a shortest path never cuts
into an obstacle at a corner it bends around), which leaves a small fraction of all corner pairs.

A private helper of the coverage planner (routing.py may offer the same later); everything is in metres.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from flightplans.coverage.robust import overlay
from flightplans.errors import PlanningError

# How much deeper than the free-space boundary the graph's corner nodes sit, as a fraction of the clearance,
# so a leg that wraps a corner never grazes the boundary it is checked against.
_NODE_INSET = 0.25
# Nodes checked first from each end of a blocked leg; farther ones only where they could give a shorter way.
_FIRST_NODES = 8


def _reflex_corners(poly: Polygon) -> tuple[np.ndarray, np.ndarray]:
    """Corners where a shortest path may bend (concave shell corners and convex hole corners), and each
    one's previous and next ring vertex."""
    poly = shapely.geometry.polygon.orient(poly, 1.0)
    out, around = [], []
    for ring in [poly.exterior, *poly.interiors]:
        xy = np.asarray(ring.coords)[:-1]
        if len(xy) < 3:
            continue
        prev = np.roll(xy, 1, axis=0)
        nxt = np.roll(xy, -1, axis=0)
        a, b = xy - prev, nxt - xy
        cross = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
        # shell CCW and holes CW: a right turn (cross < 0) is a corner that pokes into free space
        keep = cross < -1e-9
        out.append(xy[keep])
        around.append(np.stack([prev[keep], nxt[keep]], axis=1))
    if not out:
        return np.zeros((0, 2)), np.zeros((0, 2, 2))
    return np.concatenate(out), np.concatenate(around)


def _tangent(nodes: np.ndarray, around: np.ndarray, other: np.ndarray, *, slack_m: float) -> np.ndarray:
    """Whether the line from each node to ``other`` (same shape) only grazes the corner there.

    A shortest path bends at a corner only where the lines it arrives and leaves on keep the corner's two
    ring neighbours on one side; a line between them cuts into the obstacle. Nodes (and the ends of legs)
    may sit a little inside the region the legs are checked against, so a line that cuts the corner by at
    most ``slack_m`` (within its own length and the edge's) may still be flyable: it is kept.
    """
    ray = other - nodes
    ray_m = np.hypot(ray[..., 0], ray[..., 1])
    cut = []
    for q in (0, 1):
        edge = around[..., q, :] - nodes
        edge_m = np.hypot(edge[..., 0], edge[..., 1])
        cross = ray[..., 0] * edge[..., 1] - ray[..., 1] * edge[..., 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            sine = np.where((ray_m > 0) & (edge_m > 0), cross / (ray_m * edge_m), 0.0)
        cut.append(sine * np.minimum(ray_m, edge_m))  # signed depth of the edge's side, along the line
    through = ((cut[0] < 0) & (cut[1] > 0)) | ((cut[0] > 0) & (cut[1] < 0))
    return ~through | (np.minimum(np.abs(cut[0]), np.abs(cut[1])) <= slack_m)


def _polygons(geom: BaseGeometry) -> list[Polygon]:
    if isinstance(geom, Polygon):
        return [] if geom.is_empty else [geom]
    if isinstance(geom, MultiPolygon):
        return list(geom.geoms)
    return [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon)]


class FreeSpace:
    """The region a drone may fly in, with geodesic (shortest inside) distances and paths between points."""

    def __init__(self, region: Polygon, *, clearance_m: float) -> None:
        self.region = region
        shapely.prepare(region)
        # Whatever a leg between two points of the region's hull may run into: its holes and the pockets
        # between its shell and the hull. A leg whose box meets none of their boxes needs no GEOS test.
        hull = shapely.geometry.polygon.orient(shapely.convex_hull(region), 1.0)
        pockets = shapely.get_parts(overlay("difference", hull, Polygon(region.exterior)))
        obstacles = [*map(Polygon, region.interiors), *pockets]
        self._boxes = shapely.bounds(np.asarray(obstacles, dtype=object)).reshape(-1, 4)
        self._hull = np.asarray(hull.exterior.coords) if isinstance(hull, Polygon) else np.zeros((0, 2))
        inset = clearance_m * _NODE_INSET
        inner = region.buffer(-inset, join_style="mitre", mitre_limit=3.0)
        if len(_polygons(inner)) > len(_polygons(region)):
            # a neck barely wider than the clearance: keep the corners on both sides of it in the graph
            inset = clearance_m * 0.02
            inner = region.buffer(-inset, join_style="mitre", mitre_limit=3.0)
        self._slack = 2.0 * inset
        corners = [_reflex_corners(p) for p in _polygons(inner)]
        self.nodes = np.concatenate([c[0] for c in corners]) if corners else np.zeros((0, 2))
        self._around = np.concatenate([c[1] for c in corners]) if corners else np.zeros((0, 2, 2))
        n = len(self.nodes)
        self._edge = np.full((n, n), np.inf)  # straight sight lines between nodes that may be on a path
        if n:
            i, j = np.triu_indices(n, 1)
            grazes = _tangent(self.nodes[i], self._around[i], self.nodes[j], slack_m=self._slack)
            grazes &= _tangent(self.nodes[j], self._around[j], self.nodes[i], slack_m=self._slack)
            i, j = i[grazes], j[grazes]
            ok = self.visible_pairs(self.nodes[i], self.nodes[j])
            d = np.hypot(*(self.nodes[i] - self.nodes[j]).T)
            self._edge[i[ok], j[ok]] = d[ok]
            self._edge[j[ok], i[ok]] = d[ok]
            np.fill_diagonal(self._edge, 0.0)
        # Floyd-Warshall, one numpy pass per pivot; paths are read back from the edges (see _walk)
        self._dist = self._edge.copy()
        for k in range(n):
            np.minimum(self._dist, self._dist[:, k : k + 1] + self._dist[k : k + 1, :], out=self._dist)

    def visible_pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Whether each straight leg a[i] -> b[i] stays inside the region."""
        a = np.asarray(a, dtype=float).reshape(-1, 2)
        b = np.asarray(b, dtype=float).reshape(-1, 2)
        if len(a) == 0:
            return np.zeros(0, dtype=bool)
        same = np.all(np.abs(a - b) < 1e-9, axis=1)
        out = self._clear_of_obstacles(a, b)
        test = np.flatnonzero(~out)
        if len(test):
            legs = shapely.linestrings(np.stack([a[test], b[test] + same[test, None] * 1e-6], axis=1))
            out[test] = shapely.covers(self.region, legs)
        return out

    def _clear_of_obstacles(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Legs surely inside: both ends strictly inside the hull, the leg's box meeting no obstacle's box
        (a leg between two points of a convex hull stays in it; inside it, only obstacles are not free)."""
        if len(self._hull) < 4:
            return np.zeros(len(a), dtype=bool)
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        box = self._boxes
        meets = (
            (lo[:, None, 0] <= box[None, :, 2])
            & (hi[:, None, 0] >= box[None, :, 0])
            & (lo[:, None, 1] <= box[None, :, 3])
            & (hi[:, None, 1] >= box[None, :, 1])
        ).any(axis=1)
        # inside a counter-clockwise hull: left of every edge, with a margin for rounding
        e0, e1 = self._hull[:-1], self._hull[1:]
        d = e1 - e0
        ok = ~meets
        for p in (a, b):
            side = d[None, :, 0] * (p[:, None, 1] - e0[None, :, 1]) - d[None, :, 1] * (
                p[:, None, 0] - e0[None, :, 0]
            )
            ok &= (side > 1e-6 * np.hypot(d[:, 0], d[:, 1])[None, :]).all(axis=1)
        return ok

    def _grazing(self, p: np.ndarray, nearest: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distances from each point to each node, which nodes the line from the point grazes (a first or
        last node is only ever such a one), and which of those to check: all, or each point's nearest."""
        d = np.hypot(p[:, None, 0] - self.nodes[None, :, 0], p[:, None, 1] - self.nodes[None, :, 1])
        grazes = _tangent(
            self.nodes[None, :, :], self._around[None, :, :, :], p[:, None, :], slack_m=self._slack
        )
        if nearest is None or len(self.nodes) <= nearest:
            return d, grazes, grazes
        near = np.argpartition(np.where(grazes, d, np.inf), nearest, axis=1)[:, :nearest]
        check = np.zeros_like(grazes)
        np.put_along_axis(check, near, True, axis=1)
        return d, grazes, check & grazes

    def _to_nodes(self, p: np.ndarray, *, nearest: int | None = None, fallback: bool = True) -> np.ndarray:
        """Straight-line distance from each point to each node, inf where the leg leaves the region (or
        cannot start a shortest path).

        With ``nearest``, only each point's closest nodes are checked (all of them for a point that sees
        none of its closest).
        """
        n, m = len(p), len(self.nodes)
        if m == 0 or n == 0:
            return np.full((n, m), np.inf)
        d, _, check = self._grazing(p, nearest)
        pi, ni = np.nonzero(check)
        ok = self.visible_pairs(p[pi], self.nodes[ni])
        out = np.full((n, m), np.inf)
        out[pi[ok], ni[ok]] = d[pi[ok], ni[ok]]
        blind = np.flatnonzero(~np.isfinite(out).any(axis=1))
        if nearest is not None and fallback and len(blind):
            out[blind] = self._to_nodes(p[blind])
        return out

    def distance_matrix(
        self, points: np.ndarray, *, pairs: tuple[np.ndarray, np.ndarray] | None = None
    ) -> np.ndarray:
        """Geodesic distances between points (inf where there is no way inside the region).

        With ``pairs`` (i, j), only those pairs get the exact geodesic; the others keep the straight-line
        distance, a lower bound that is good enough for ordering far-apart cells.
        """
        p = np.asarray(points, dtype=float).reshape(-1, 2)
        n = len(p)
        euclid = np.hypot(p[:, None, 0] - p[None, :, 0], p[:, None, 1] - p[None, :, 1])
        if n == 0:
            return euclid
        if pairs is None:
            i, j = np.triu_indices(n, 1)
        else:
            key = np.unique(np.minimum(*pairs) * n + np.maximum(*pairs))
            i, j = key // n, key % n
            keep = i < j
            i, j = i[keep], j[keep]
        ok = self.visible_pairs(p[i], p[j])
        out = euclid.copy()
        if ok.all():
            return out
        bi, bj = i[~ok], j[~ok]
        out[bi, bj] = out[bj, bi] = np.inf
        if len(self.nodes):
            involved = np.unique(np.concatenate([bi, bj]))
            a = self._to_nodes(p[involved], nearest=8)  # points x nodes
            m = len(self.nodes)
            # a point sees only a few nodes: take the min over those instead of over all m
            seen = max(1, int(np.isfinite(a).sum(axis=1).max()))
            first = np.argsort(~np.isfinite(a), axis=1, kind="stable")[:, :seen]  # visible nodes first
            first_d = np.take_along_axis(a, first, axis=1)
            step = max(1, 4_000_000 // (seen * m))
            via_first = np.concatenate(
                [
                    np.min(first_d[s : s + step, :, None] + self._dist[first[s : s + step]], axis=1)
                    for s in range(0, len(a), step)
                ]
            )  # point -> ... -> node
            li = np.searchsorted(involved, bi)
            lj = np.searchsorted(involved, bj)
            via = np.min(via_first[li] + a[lj], axis=1)
            out[bi, bj] = out[bj, bi] = via
        return out

    def paths(
        self, legs: list[tuple[tuple[float, float], tuple[float, float]]]
    ) -> list[list[tuple[float, float]]]:
        """Shortest polylines for many legs at once (one visibility query for all their ends)."""
        if not legs:
            return []
        ends = np.asarray([p for leg in legs for p in leg], dtype=float)
        direct = self.visible_pairs(ends[0::2], ends[1::2])
        need = np.flatnonzero(~direct)
        to_nodes = self._exact_to_nodes(ends[2 * need], ends[2 * need + 1]) if len(need) else None
        out = []
        for k, (a, b) in enumerate(legs):
            if direct[k]:
                out.append([(float(a[0]), float(a[1])), (float(b[0]), float(b[1]))])
                continue
            q = int(np.flatnonzero(need == k)[0])
            assert to_nodes is not None  # computed whenever some leg is blocked
            out.append(self._via_nodes(a, b, to_nodes[q], to_nodes[len(need) + q]))
        return out

    def _exact_to_nodes(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``_to_nodes`` of all ``a`` then all ``b``, checking only the nodes a shortest path may use.

        A first (or last) node j costs at least |a - j| + |j - b|; once a path of length L is known through
        each end's nearest visible nodes, nodes whose bound is not below L cannot shorten it, so their
        (costly) visibility is never checked. The result is the same shortest path as checking all nodes.
        """
        n, m = len(a), len(self.nodes)
        ends = np.concatenate([a, b])
        if m == 0:
            return np.full((2 * n, 0), np.inf)
        d, grazes, done = self._grazing(ends, _FIRST_NODES)
        pi, ni = np.nonzero(done)
        ok = self.visible_pairs(ends[pi], self.nodes[ni])
        to = np.full((2 * n, m), np.inf)
        to[pi[ok], ni[ok]] = d[pi[ok], ni[ok]]
        best = np.array([np.min(to[q][:, None] + self._dist + to[n + q][None, :]) for q in range(n)])
        bound = d[:n] + d[n:]  # lower bound on any path from a through node j, or through j to b
        want = (bound < best[:, None] + 1e-9) | ~np.isfinite(best)[:, None]
        pi, ni = np.nonzero(np.concatenate([want, want]) & grazes & ~done)
        if len(pi):
            ok = self.visible_pairs(ends[pi], self.nodes[ni])
            to[pi[ok], ni[ok]] = d[pi[ok], ni[ok]]
        return to

    def _via_nodes(self, a, b, from_a: np.ndarray, to_b: np.ndarray) -> list[tuple[float, float]]:
        pa, pb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        if not len(self.nodes):
            raise PlanningError(
                f"no way inside the area from ({pa[0]:.1f}, {pa[1]:.1f}) to ({pb[0]:.1f}, {pb[1]:.1f})",
                where=(float(pa[0]), float(pa[1])),
                code="plan.freespace.way_inside_area",
                params={
                    "pa": f"{pa[0]:.1f}",
                    "pa2": f"{pa[1]:.1f}",
                    "pb": f"{pb[0]:.1f}",
                    "pb2": f"{pb[1]:.1f}",
                },
            )
        total = from_a[:, None] + self._dist + to_b[None, :]
        k = int(np.argmin(total))
        i, j = divmod(k, len(self.nodes))
        if not np.isfinite(total[i, j]):
            raise PlanningError(
                f"no way inside the area from ({pa[0]:.1f}, {pa[1]:.1f}) to ({pb[0]:.1f}, {pb[1]:.1f}): "
                "a passage is narrower than twice the clearance",
                where=(float(pa[0]), float(pa[1])),
                code="plan.freespace.way_inside_area_passage",
                params={
                    "pa": f"{pa[0]:.1f}",
                    "pa2": f"{pa[1]:.1f}",
                    "pb": f"{pb[0]:.1f}",
                    "pb2": f"{pb[1]:.1f}",
                },
            )
        out = [(float(pa[0]), float(pa[1]))]
        out += [(float(x), float(y)) for x, y in self.nodes[self._walk(i, j)]]
        out.append((float(pb[0]), float(pb[1])))
        return out

    def _walk(self, i: int, j: int) -> list[int]:
        """Nodes of the shortest way from node i to node j: each step the sight line that starts it."""
        out = [i]
        for _ in range(len(self.nodes)):
            if i == j:
                break
            via = self._edge[i] + self._dist[:, j]
            via[i] = np.inf
            i = int(np.argmin(via))
            out.append(i)
        return out

    def path(self, a: tuple[float, float], b: tuple[float, float]) -> list[tuple[float, float]]:
        """The shortest polyline from a to b inside the region (both ends included).

        Corners it wraps are kept a quarter of the clearance away, inside the region:

        >>> u = Polygon([(0, 0), (30, 0), (30, 30), (20, 30), (20, 10), (10, 10), (10, 30), (0, 30)])
        >>> [tuple(round(v, 1) for v in p) for p in FreeSpace(u, clearance_m=1).path((5, 25), (25, 25))]
        [(5.0, 25.0), (9.8, 9.8), (20.2, 9.8), (25.0, 25.0)]
        """
        return self.paths([(a, b)])[0]
