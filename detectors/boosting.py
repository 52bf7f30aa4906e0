"""A small histogram gradient-boosted tree classifier: the model of the domain classifier.

The same model as scikit-learn's ``HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=8,
learning_rate=0.1)`` with its defaults (log loss, 255 quantile bins plus one for missing values, best-first
trees, ``min_samples_leaf=20``, no L2 penalty, missing values sent to the better side of each split), without
early stopping. The domain classifier fits a few thousand rows, about 50 ms; importing scikit-learn (and the
``scipy.stats`` it pulls in) costs ~0.9 s, most of a ``driftloop check`` run.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from detectors.columns import FloatArray, IntArray

MAX_BINS = 255  # bins of non-missing values; code MAX_BINS holds the missing ones
MIN_HESSIAN = 1e-3
CodeArray = npt.NDArray[np.uint8]


def bin_thresholds(column: FloatArray) -> FloatArray:
    """Upper bounds of the bins of one feature: midpoints between distinct values, or quantiles.

    Examples
    --------
    >>> bin_thresholds(np.array([1.0, 2.0, 2.0, 4.0, np.nan])).tolist()
    [1.5, 3.0]
    """
    present = column[~np.isnan(column)]
    distinct = np.unique(present)
    if distinct.size <= MAX_BINS:
        return (distinct[:-1] + distinct[1:]) / 2.0
    # as scikit-learn: percentiles between bins, then unique (ties collapse bins)
    cuts = np.percentile(present, np.linspace(0, 100, MAX_BINS + 1)[1:-1], method="midpoint")
    return np.unique(cuts)


def bin_codes(x: FloatArray, thresholds: list[FloatArray]) -> CodeArray:
    """Bin index of every value (``x`` is rows x features); NaN gets ``MAX_BINS``."""
    codes = np.empty(x.shape, dtype=np.uint8)
    for j, cuts in enumerate(thresholds):
        column = x[:, j]
        codes[:, j] = np.searchsorted(cuts, column, side="left")
        codes[np.isnan(column), j] = MAX_BINS
    return codes


@dataclass(eq=False)  # identity: leaves are removed by identity
class _Node:
    rows: IntArray
    grad: float
    hess: float
    hist: FloatArray  # (3, features, MAX_BINS + 1): gradient, hessian and row count per bin
    index: int = -1
    split: tuple[float, int, int, bool] | None = None  # gain, feature, bin, missing go left


@dataclass
class Tree:
    """Node arrays of one fitted tree; a row goes left when its bin is ``<= bin_`` (missing: ``left_na``)."""

    feature: list[int] = field(default_factory=list)
    bin_: list[int] = field(default_factory=list)
    left_na: list[bool] = field(default_factory=list)
    left: list[int] = field(default_factory=list)
    right: list[int] = field(default_factory=list)
    value: list[float] = field(default_factory=list)

    def add(self) -> int:
        """A new leaf; returns its index."""
        self.feature.append(-1)
        self.bin_.append(0)
        self.left_na.append(False)
        self.left.append(-1)
        self.right.append(-1)
        self.value.append(0.0)
        return len(self.feature) - 1

    def predict(self, codes: CodeArray) -> FloatArray:
        """Leaf value of every row."""
        feature, bin_, left_na = np.array(self.feature), np.array(self.bin_), np.array(self.left_na)
        left, right, value = np.array(self.left), np.array(self.right), np.array(self.value)
        node = np.zeros(codes.shape[0], dtype=np.intp)
        rows = np.arange(codes.shape[0])
        while True:
            inner = feature[node] >= 0
            if not inner.any():
                return np.asarray(value[node], dtype=np.float64)
            at, n = rows[inner], node[inner]
            code = codes[at, feature[n]]
            go_left = np.where(code == MAX_BINS, left_na[n], code <= bin_[n])
            node[inner] = np.where(go_left, left[n], right[n])


class GradientBoosting:
    """Binary log-loss boosting of best-first trees on binned features.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(2000, 2))
    >>> y = (x[:, 0] * x[:, 1] > 0).astype(float)  # an interaction no single feature shows
    >>> model = GradientBoosting().fit(x[:1000], y[:1000])
    >>> bool(np.mean((model.decision_function(x[1000:]) > 0) == y[1000:]) > 0.9)
    True
    """

    def __init__(
        self,
        max_iter: int = 30,
        max_leaf_nodes: int = 8,
        learning_rate: float = 0.1,
        min_samples_leaf: int = 20,
    ) -> None:
        self.max_iter, self.max_leaf_nodes = max_iter, max_leaf_nodes
        self.learning_rate, self.min_samples_leaf = learning_rate, min_samples_leaf
        self.thresholds: list[FloatArray] = []
        self.trees: list[Tree] = []
        self.baseline = 0.0

    def fit(self, x: FloatArray, y: FloatArray) -> GradientBoosting:
        """Fit on ``x`` (rows x features, NaN = missing) and labels ``y`` in {0, 1}."""
        self.thresholds = [bin_thresholds(x[:, j]) for j in range(x.shape[1])]
        codes = bin_codes(x, self.thresholds)
        # one flat bin index per cell, so a node's three histograms are three bincounts
        flat = codes.astype(np.intp) + np.arange(x.shape[1]) * (MAX_BINS + 1)
        rate = float(np.clip(y.mean(), 1e-12, 1 - 1e-12))
        self.baseline = float(np.log(rate / (1 - rate)))
        raw = np.full(y.size, self.baseline)
        self.trees = []
        for _ in range(self.max_iter):
            prob = 1.0 / (1.0 + np.exp(-raw))
            tree = self._grow(codes, flat, prob - y, prob * (1.0 - prob), raw)
            self.trees.append(tree)
        return self

    def decision_function(self, x: FloatArray) -> FloatArray:
        """Raw scores (log-odds of class 1) of rows ``x``."""
        codes = bin_codes(x, self.thresholds)
        raw = np.full(x.shape[0], self.baseline)
        for tree in self.trees:
            raw += tree.predict(codes)
        return raw

    def _hist(self, flat: IntArray, rows: IntArray, grad: FloatArray, hess: FloatArray) -> FloatArray:
        n_features = flat.shape[1]
        cells = flat[rows].ravel()
        size = n_features * (MAX_BINS + 1)
        out = np.empty((3, size))
        out[0] = np.bincount(cells, weights=np.repeat(grad[rows], n_features), minlength=size)
        out[1] = np.bincount(cells, weights=np.repeat(hess[rows], n_features), minlength=size)
        out[2] = np.bincount(cells, minlength=size)
        return out.reshape(3, n_features, MAX_BINS + 1)

    def _best_split(self, node: _Node) -> tuple[float, int, int, bool] | None:
        n_rows = node.rows.size
        min_leaf = self.min_samples_leaf
        if n_rows < 2 * min_leaf or node.hess < 2 * MIN_HESSIAN:
            return None
        cum = np.cumsum(node.hist[:, :, :MAX_BINS], axis=2)  # bins <= b, missing excluded
        total = np.array([node.grad, node.hess, float(n_rows)])[:, None, None]
        missing = node.hist[:, :, MAX_BINS:]
        best: tuple[float, int, int, bool] | None = None
        for na_left in (False, True) if missing[2].any() else (False,):
            left = cum + missing if na_left else cum
            right = total - left
            ok = (left[2] >= min_leaf) & (right[2] >= min_leaf)
            ok &= (left[1] >= MIN_HESSIAN) & (right[1] >= MIN_HESSIAN)
            with np.errstate(divide="ignore", invalid="ignore"):
                gain = np.where(ok, left[0] ** 2 / left[1] + right[0] ** 2 / right[1], -np.inf)
            feature, bin_ = np.unravel_index(int(np.argmax(gain)), gain.shape)
            value = float(gain[feature, bin_]) - node.grad**2 / node.hess
            if value > 1e-12 and (best is None or value > best[0]):
                best = (value, int(feature), int(bin_), na_left)
        return best

    def _grow(
        self, codes: CodeArray, flat: IntArray, grad: FloatArray, hess: FloatArray, raw: FloatArray
    ) -> Tree:
        tree = Tree()
        rows = np.arange(codes.shape[0])
        root = _Node(rows, float(grad.sum()), float(hess.sum()), self._hist(flat, rows, grad, hess))
        root.index = tree.add()
        leaves = [root]
        heap: list[tuple[float, int, _Node]] = []
        order = 0
        root.split = self._best_split(root)
        if root.split:
            heap.append((-root.split[0], order, root))
        while heap and len(leaves) < self.max_leaf_nodes:
            _, _, node = heapq.heappop(heap)
            assert node.split is not None
            _, feature, bin_, na_left = node.split
            code = codes[node.rows, feature]
            go_left = np.where(code == MAX_BINS, na_left, code <= bin_)
            children = []
            for part in (node.rows[go_left], node.rows[~go_left]):
                child = _Node(part, float(grad[part].sum()), float(hess[part].sum()), node.hist)
                child.index = tree.add()
                children.append(child)
            small, large = sorted(children, key=lambda c: c.rows.size)
            small.hist = self._hist(flat, small.rows, grad, hess)
            large.hist = node.hist - small.hist  # the sibling's histogram by subtraction
            tree.feature[node.index], tree.bin_[node.index] = feature, bin_
            tree.left_na[node.index] = na_left
            tree.left[node.index], tree.right[node.index] = children[0].index, children[1].index
            leaves.remove(node)
            leaves += children
            for child in children if len(leaves) < self.max_leaf_nodes else ():
                child.split = self._best_split(child)
                if child.split:
                    order += 1
                    heapq.heappush(heap, (-child.split[0], order, child))
        for leaf in leaves:
            value = -self.learning_rate * leaf.grad / leaf.hess if leaf.hess > 0 else 0.0
            tree.value[leaf.index] = value
            raw[leaf.rows] += value
        return tree
