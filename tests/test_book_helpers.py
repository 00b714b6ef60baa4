"""mxwd's linreg, squared_loss, sgd and data_iter against the book's own helper packages.

The book shipped its helpers on PyPI: gluonbook 0.6.9 (mid-2018, with the source text's
four-argument `gb.data_iter(batch_size, num_examples, features, labels)`), gluonbook 0.8.10
and d2lzh 1.0.0 (`data_iter(batch_size, features, labels)`). In all three

    linreg(X, w, b)          = nd.dot(X, w) + b
    squared_loss(y_hat, y)   = (y_hat - y.reshape(y_hat.shape)) ** 2 / 2
    sgd(params, lr, B):        param[:] = param - lr * param.grad / B
    data_iter: indices = list(range(n)); random.shuffle(indices); consecutive chunks of them.

How each gets here:
- gluonbook 0.8.10 and d2lzh 1.0.0 are pinned in requirements-lock.txt, so the README's
  `pip install -r requirements.txt` installs them; the tests import them as a user does.
- gluonbook 0.6.9 is the same distribution as 0.8.10, and one environment holds one version
  of a distribution. The first test that needs it installs it from PyPI (`pip install
  --no-deps --target`, the sdist's sha256 pinned below) into pytest's cache directory
  (.pytest_cache/d/book-helpers), once (1 to 2 s; the package is pure Python, so every
  Python version's session shares it), and loads it from there under a module name of its
  own, `gluonbook_0_6_9`, through an importlib spec; sys.path is untouched, so `import
  gluonbook` stays 0.8.10. Without PyPI those tests skip and say why.
- gluonbook 0.6.9 runs `from IPython.display import set_matplotlib_formats` and
  `set_matplotlib_formats('retina')` when imported. IPython 9 (the lock's, on Python 3.11)
  removed that function: the import fails with ImportError. IPython 8 (Python 3.9, 3.10)
  has it, deprecated, and the call creates an IPython InteractiveShell in the importing
  process. It also sets matplotlib's figure.figsize. So the tests load it with a no-op in
  that function's place and restore matplotlib's settings afterwards: figures are none of
  what is compared here. test_gluonbook_0_6_9_as_published_... imports it unchanged in a
  process of its own. gluonbook 0.8.10 and d2lzh import `IPython.display` and call it only
  when plotting, which these tests never do.
- None of the three declares IPython (it comes with jupyter): without it none imports.

Every test first checks that the module it uses is the version it claims: its __version__,
its distribution's metadata, and that the file imported is one of that distribution's files.

Tolerances use the unit roundoff u (2**-24 in float32, 2**-53 in float64): a correctly
rounded operation returns x (1 + d) with |d| <= u, so k roundings in a product of factors
give a relative error of at most (1 + u)**k - 1.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import textwrap
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Iterator, NamedTuple

import numpy as np
import pytest

from mxwd._mx import nd
from mxwd.data import data_iter
from mxwd.scratch import linreg, sgd, squared_loss

pytestmark = pytest.mark.xdist_group("book_helpers")  # one worker imports the three packages, once

U = {"float32": 2.0 ** -24, "float64": 2.0 ** -53}
U64 = U["float64"]

# The sdist on PyPI (gluonbook 0.6.9 has no wheel); pip checks the download against it.
GLUONBOOK_0_6_9 = "gluonbook==0.6.9 --hash=sha256:92fe01e3014bd75900b5f69f2949b0c85379f118e2ae1f29ca87cf0988aacd3d"
# What pip prints when it cannot reach the index (then the 0.6.9 tests skip instead of failing)
NO_NETWORK = ("NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
              "Name or service not known", "Network is unreachable", "Connection refused", "ConnectTimeout",
              "Read timed out", "ProxyError", "SSLError")


class Book(NamedTuple):
    """One of the book's helper packages, as imported."""

    name: str  # the distribution on PyPI
    version: str
    module: ModuleType
    dist: metadata.Distribution
    takes_num_examples: bool  # data_iter(batch_size, num_examples, features, labels): the 2018 call


BOOKS = [("gluonbook", "0.6.9"), ("gluonbook", "0.8.10"), ("d2lzh", "1.0.0")]


def check_version(book: Book) -> None:
    """The module is `book.version` by its own word, by its metadata and by where it lies."""
    assert book.module.__version__ == book.version, (book.module.__version__, book)
    assert book.dist.metadata["Name"] == book.name and book.dist.version == book.version, book.dist.metadata
    files = {Path(book.dist.locate_file(f)).resolve() for f in book.dist.files or ()}
    assert Path(book.module.__file__).resolve() in files, (
        f"{book.module.__file__} is not a file of {book.name} {book.dist.version}")


def load_as(name: str, package_dir: Path) -> ModuleType:
    """Execute the package in `package_dir` as a module called `name`, without sys.path.

    Its relative imports (`from .utils import *`) resolve inside `package_dir`. A module of
    that name already loaded is returned as it is.
    """
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, package_dir / "__init__.py", submodule_search_locations=[str(package_dir)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]
        raise
    return module


@contextlib.contextmanager
def figure_settings_left_alone() -> Iterator[None]:
    """gluonbook 0.6.9's import-time figure settings, made harmless for the duration.

    `IPython.display.set_matplotlib_formats` becomes a no-op (IPython 9 has none: the import
    would fail; IPython 8's would create an InteractiveShell in this process), and
    matplotlib's rcParams are restored on exit (the module sets figure.figsize).
    """
    import IPython.display
    import matplotlib

    missing = object()
    before = getattr(IPython.display, "set_matplotlib_formats", missing)
    IPython.display.set_matplotlib_formats = lambda *formats, **kwargs: None
    try:
        with matplotlib.rc_context():
            yield
    finally:
        if before is missing:
            del IPython.display.set_matplotlib_formats
        else:
            IPython.display.set_matplotlib_formats = before


def installed_in(target: Path, name: str, version: str) -> bool:
    dists = list(metadata.distributions(path=[str(target)]))
    return (len(dists) == 1 and dists[0].metadata["Name"] == name and dists[0].version == version
            and (target / name / "utils.py").is_file())


def pip_install_target(target: Path, requirement: str) -> None:
    """`pip install --no-deps --target` into a staging folder, then rename it to `target`.

    The rename makes the install atomic: pytest-xdist workers or two test sessions on one
    checkout never see a half-written folder, and the one that loses the race uses the
    winner's. --no-build-isolation builds the sdist with this environment's setuptools (the
    lock's) instead of fetching another from PyPI; --use-pep517 because pip 23.0 (Python 3.9
    and 3.10's venvs) would otherwise run the legacy `setup.py install` for an sdist without
    pyproject.toml. Skips when PyPI cannot be reached.
    """
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target.parent))
    try:
        (staging / "requirements.txt").write_text(requirement + "\n")
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--use-pep517",
             "--require-hashes", "--disable-pip-version-check", "--retries", "2", "--timeout", "30",
             "--quiet", "--target", str(staging / "site"), "-r", str(staging / "requirements.txt")],
            capture_output=True, text=True, timeout=600,
        )
        if proc.returncode != 0:
            output = proc.stdout + proc.stderr
            if any(marker in output for marker in NO_NETWORK):
                last = [ln for ln in output.splitlines() if ln.strip()][-1]
                pytest.skip(f"PyPI is unreachable, so {requirement.split()[0]} cannot be installed "
                            f"(pip: {last.strip()})")
            pytest.fail(f"pip could not install {requirement}:\n{output[-3000:]}")
        try:
            os.rename(staging / "site", target)
        except OSError:  # another process installed it first
            if not installed_in(target, *requirement.split()[0].split("==")):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@pytest.fixture(scope="session")
def gluonbook_0_6_9_dir(request, tmp_path_factory) -> Path:
    """gluonbook 0.6.9 installed from PyPI into a cache folder (once: later sessions reuse it)."""
    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    root = cache.mkdir("book-helpers") if cache is not None else tmp_path_factory.mktemp("book-helpers")
    target = root / "gluonbook-0.6.9"
    if not installed_in(target, "gluonbook", "0.6.9"):
        if target.exists():  # a broken install: move it away (atomically), then reinstall
            aside = Path(tempfile.mkdtemp(prefix=".broken-", dir=root))
            with contextlib.suppress(OSError):
                os.rename(target, aside / "old")
            shutil.rmtree(aside, ignore_errors=True)
        pip_install_target(target, GLUONBOOK_0_6_9)
    return target


def _load(request, name: str, version: str) -> Book:
    if (name, version) == ("gluonbook", "0.6.9"):
        target = request.getfixturevalue("gluonbook_0_6_9_dir")
        (dist,) = metadata.distributions(path=[str(target)])
        with figure_settings_left_alone():
            module = load_as("gluonbook_0_6_9", target / "gluonbook")
        return Book(name, version, module, dist, takes_num_examples=True)
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        pytest.fail(f"{name}=={version} is pinned in requirements-lock.txt but not installed here: "
                    "run `pip install -r requirements.txt`")
    return Book(name, version, importlib.import_module(name), dist, takes_num_examples=False)


@pytest.fixture(scope="session", params=BOOKS, ids=[f"{n}-{v}" for n, v in BOOKS])
def loaded_book(request) -> Book:
    return _load(request, *request.param)


@pytest.fixture
def book(loaded_book) -> Book:
    check_version(loaded_book)  # in every test: no test can pass against the wrong package
    return loaded_book


@pytest.fixture
def python_random() -> Iterator[None]:
    """The book's data_iter shuffles with Python's global `random`: leave it as it was found."""
    state = random.getstate()
    yield
    random.setstate(state)


def test_each_helper_is_the_version_it_claims(book):
    # check_version ran in the fixture; the 2018 package really has the four-argument data_iter
    names = book.module.data_iter.__code__.co_varnames[: book.module.data_iter.__code__.co_argcount]
    expected = ("batch_size", "num_examples", "features", "labels") if book.takes_num_examples \
        else ("batch_size", "features", "labels")
    assert names == expected
    if book.takes_num_examples:  # the isolated load left the installed 0.8.10 in place
        import gluonbook
        assert gluonbook.__version__ == "0.8.10" and book.module is not gluonbook


class NotInstalled:
    """A meta path finder that answers for `package` as the import system does when it is absent."""

    def __init__(self, package: str):
        self.package = package

    def find_spec(self, name, path=None, target=None):
        if name == self.package or name.startswith(self.package + "."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def test_without_ipython_none_of_them_imports(book, monkeypatch):
    # as if IPython were not installed: its modules unloaded and no finder can find it
    for name in [k for k in sys.modules if k == "IPython" or k.startswith("IPython.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [NotInstalled("IPython"), *sys.meta_path])
    with pytest.raises(ModuleNotFoundError) as info:
        load_as(f"_no_ipython_{book.name}_{book.version.replace('.', '_')}", Path(book.module.__file__).parent)
    assert info.value.name == "IPython"


def gamma(k: int, u: float) -> float:
    """Higham's gamma_k = k u / (1 - k u): bounds the relative error of k roundings."""
    return k * u / (1 - k * u)


# (dtype, scale of every entry): ordinary, float64, tiny and huge float32 values whose
# products stay normal (1e-30 > 1.2e-38) and finite (200 * 1e30 < 3.4e38)
SCALES = [("float32", 1.0), ("float64", 1.0), ("float32", 1e-15), ("float32", 1e15)]


@pytest.mark.parametrize("dtype, scale", SCALES)
def test_linreg_matches_the_books(book, dtype, scale):
    rng = np.random.default_rng(7)
    X, w, b = (scale * rng.standard_normal(shape) for shape in [(7, 200), (200, 1), (1,)])
    X, w, b = (a.astype(dtype) for a in (X, w, b))
    ours = linreg(*(nd.array(a, dtype=dtype) for a in (X, w, b))).asnumpy()
    theirs = book.module.linreg(*(nd.array(a, dtype=dtype) for a in (X, w, b))).asnumpy()
    assert ours.dtype == theirs.dtype == np.dtype(dtype) and ours.shape == (7, 1)
    np.testing.assert_array_equal(ours, theirs)  # the same two operators on the same arrays
    # Any order of summing the 200 products, then + b, is within gamma_201 * (sum |x_i w_i| + |b|)
    # of the exact value (Higham, Accuracy and Stability, 3.1); the float64 reference adds its own
    # gamma_201(2**-53). A missing or doubled b or a transposed w is off by orders more.
    X, w, b = (a.astype(np.float64) for a in (X, w, b))
    bound = (gamma(201, U[dtype]) + gamma(201, U64)) * (np.abs(X) @ np.abs(w) + np.abs(b))
    assert np.all(np.abs(ours - (X @ w + b)) <= bound)


@pytest.mark.parametrize("label_shape", [(9, 1), (9,)])
@pytest.mark.parametrize("dtype, scale", SCALES)
def test_squared_loss_matches_the_books(book, dtype, scale, label_shape):
    rng = np.random.default_rng(8)
    y_hat = (scale * rng.standard_normal((9, 1))).astype(dtype)
    y = (scale * rng.standard_normal(label_shape)).astype(dtype)
    y.reshape(-1)[0] = y_hat[0, 0]  # an exact fit: the loss must be exactly 0
    ours = squared_loss(nd.array(y_hat, dtype=dtype), nd.array(y, dtype=dtype)).asnumpy()
    theirs = book.module.squared_loss(nd.array(y_hat, dtype=dtype), nd.array(y, dtype=dtype)).asnumpy()
    assert ours.dtype == theirs.dtype == np.dtype(dtype) and ours.shape == theirs.shape == (9, 1)
    np.testing.assert_array_equal(ours, theirs)  # the same operators (a reshape is a copy)
    # (a - b) rounds once (u), squaring by pow() within 1 ulp (2u), / 2 is exact:
    # (1 + u)^2 (1 + 2u) - 1 relative, plus the float64 reference's own three roundings.
    exact = (y_hat.astype(np.float64) - y.reshape(9, 1).astype(np.float64)) ** 2 / 2
    rtol = (1 + U[dtype]) ** 2 * (1 + 2 * U[dtype]) - 1 + (1 + U64) ** 3 - 1
    assert ours[0, 0] == 0 and np.all(np.abs(ours - exact) <= rtol * exact)


# (scale of w, scale of the gradient): the update much smaller than w, the update dominating
# (w tiny), huge gradients, and updates below w's last digit (w must not move at all)
SGD_SCALES = [(1.0, 1.0), (1e-6, 1.0), (1.0, 1e20), (1.0, 1e-20)]


@pytest.mark.parametrize("batch_size", [1, 3, 7, 20])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sgd_matches_the_books(book, dtype, batch_size):
    """w <- w - lr * g / B, against the book's sgd and a float64 NumPy step.

    mxwd's sgd is MXNet's fused sgd_update with lr and rescale_grad = 1/B as float32 numbers,
    whatever the weights' dtype: 4 roundings of the update in float32 (lr, 1/B, two products);
    in float64 2 in float32 (lr, 1/B) and 2 in float64. The book's NDArray arithmetic: lr cast
    to the dtype, a product, a division: 3 roundings. Then w - update rounds once more, to
    within half an ulp of the result. So |result - exact| <= e |lr g / B| + ulp / 2, with e
    the relative error of the update.
    """
    lr, u = 0.003, U[dtype]
    e_ours = (1 + u) ** 4 - 1 if dtype == "float32" else (1 + U["float32"]) ** 2 * (1 + u) ** 2 - 1
    e_theirs = (1 + u) ** 3 - 1
    rng = np.random.default_rng(batch_size)
    for w_scale, g_scale in SGD_SCALES:
        w = (w_scale * rng.standard_normal((200, 1))).astype(dtype)
        g = (g_scale * rng.standard_normal((200, 1))).astype(dtype)
        ours, theirs = nd.array(w, dtype=dtype), nd.array(w, dtype=dtype)
        for param in (ours, theirs):
            param.attach_grad()
            param.grad[:] = nd.array(g, dtype=dtype)
        sgd([ours], lr, batch_size)
        book.module.sgd([theirs], lr, batch_size)
        ours, theirs = ours.asnumpy(), theirs.asnumpy()
        assert ours.dtype == theirs.dtype == np.dtype(dtype)

        step = lr * g.astype(np.float64) / batch_size  # float64: within 3 * 2**-53 of exact
        exact = w.astype(np.float64) - step
        ulp = np.spacing(np.maximum(np.abs(ours), np.abs(theirs))).astype(np.float64)
        assert np.all(np.abs(theirs - exact) <= (e_theirs + 3 * U64) * np.abs(step) + ulp / 2)
        assert np.all(np.abs(ours - exact) <= (e_ours + 3 * U64) * np.abs(step) + ulp / 2)
        if batch_size == 1 and dtype == "float32":
            np.testing.assert_array_equal(ours, theirs)  # lr * g, then w - it: the same two roundings
        else:  # two roundings to nearest of reals that differ by (e_ours + e_theirs) |step|
            assert np.all(np.abs(ours - theirs) <= (e_ours + e_theirs) * np.abs(step) + ulp)
        # a step below a quarter ulp of w (half an ulp of the binade below, if w - step crosses
        # a power of 2) leaves w exactly as it was: all of them at g_scale 1e-20
        negligible = np.abs(step) * (1 + e_ours) < np.spacing(np.abs(w)).astype(np.float64) / 4
        assert negligible.all() or g_scale != 1e-20
        np.testing.assert_array_equal(ours[negligible], w[negligible])
        np.testing.assert_array_equal(theirs[negligible], w[negligible])


@pytest.mark.parametrize("batch_size", [1, 3, 7, 20, 25])  # 20 rows: 3 and 7 leave a partial batch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_data_iter_yields_the_books_batches_for_the_same_permutation(book, dtype, batch_size, python_random):
    n_train, n_test = 20, 100
    rng = np.random.default_rng(9)
    features = rng.standard_normal((n_train + n_test, 200)).astype(dtype)
    labels = rng.standard_normal((n_train + n_test, 1)).astype(dtype)
    F, L = nd.array(features, dtype=dtype), nd.array(labels, dtype=dtype)
    seed = 1000 + batch_size
    random.seed(seed)
    if book.takes_num_examples:  # the 2018 call: the first n_train rows of all 120
        theirs = list(book.module.data_iter(batch_size, n_train, F, L))
    else:
        theirs = list(book.module.data_iter(batch_size, F[:n_train], L[:n_train]))
    # random.seed(s) then random.shuffle(x) is random.Random(s).shuffle(x): the module's
    # functions are the methods of one hidden Random instance
    order = list(range(n_train))
    random.Random(seed).shuffle(order)
    assert sorted(order) == list(range(n_train)) and order != list(range(n_train))
    ours = list(data_iter(batch_size, F, L, np.array(order)))

    starts = range(0, n_train, batch_size)
    assert len(ours) == len(theirs) == len(starts) == -(-n_train // batch_size)
    for (X, y), (X_book, y_book), start in zip(ours, theirs, starts):
        rows = order[start:start + batch_size]  # the last batch holds what is left
        for got in (X, X_book):
            assert got.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(got.asnumpy(), features[rows])  # copies: exact
        for got in (y, y_book):
            np.testing.assert_array_equal(got.asnumpy(), labels[rows])


@pytest.mark.slow  # a new Python process that imports mxnet: about 2 to 4 s
def test_gluonbook_0_6_9_as_published_imports_only_with_ipython_8(gluonbook_0_6_9_dir, tmp_path):
    code = textwrap.dedent("""
        import json, sys, warnings
        sys.path.insert(0, sys.argv[1])
        import IPython
        out = {"ipython": IPython.__version__}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                import gluonbook
            except ImportError as e:
                out["error"] = str(e)
            else:
                import matplotlib
                from IPython.core.interactiveshell import InteractiveShell
                out.update(version=gluonbook.__version__, file=gluonbook.__file__,
                           shell=InteractiveShell.initialized(),
                           figsize=list(matplotlib.rcParams["figure.figsize"]))
        out["warnings"] = [str(w.message) for w in caught if "set_matplotlib_formats" in str(w.message)]
        print(json.dumps(out))
    """)
    proc = subprocess.run([sys.executable, "-c", code, str(gluonbook_0_6_9_dir)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.splitlines()[-1])
    if int(out["ipython"].split(".")[0]) >= 9:
        assert out["error"].startswith("cannot import name 'set_matplotlib_formats' from 'IPython.display'"), out
    else:
        assert "error" not in out, out
        assert out["version"] == "0.6.9" and Path(out["file"]).is_relative_to(gluonbook_0_6_9_dir), out
        assert out["shell"] is True and out["figsize"] == [3.5, 2.5], out
        assert any("deprecated since IPython 7.23" in w for w in out["warnings"]), out
