/* Compiled form of the two per-level loops every book message runs (perparb.book and the
 * checksum text sides in perparb.feeds.booksync). Behaviour is exactly that of the Python
 * loops they replace (perparb/levels.py), which stay the fallback when this module is not
 * built; the tests run both on the same inputs.
 *
 * A side is a dict price -> size plus a list of sort keys (price * sign, ascending, so the
 * best level is element 0). The text side keeps the venue's (price, size) strings in a list
 * at the same index as its keys.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* First index whose key is >= x (right=0) or > x (right=1); keys hold only floats. */
static Py_ssize_t bisect(PyObject *keys, double x, int right) {
    Py_ssize_t lo = 0, hi = PyList_GET_SIZE(keys);
    PyObject **items = ((PyListObject *)keys)->ob_item;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        double k = PyFloat_AS_DOUBLE(items[mid]);
        if (right ? (x < k) : !(k < x))
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static int check_keys(PyObject *keys) {
    if (!PyList_CheckExact(keys)) {
        PyErr_SetString(PyExc_TypeError, "keys must be a list");
        return -1;
    }
    return 0;
}

static int pair(PyObject *row, PyObject **a, PyObject **b) {
    if (PyTuple_CheckExact(row) && PyTuple_GET_SIZE(row) == 2) {
        *a = PyTuple_GET_ITEM(row, 0);
        *b = PyTuple_GET_ITEM(row, 1);
        return 0;
    }
    if (PyList_CheckExact(row) && PyList_GET_SIZE(row) == 2) {
        *a = PyList_GET_ITEM(row, 0);
        *b = PyList_GET_ITEM(row, 1);
        return 0;
    }
    PyErr_SetString(PyExc_TypeError, "a level must be a (price, size) pair");
    return -1;
}

/* apply_side(levels: dict, keys: list, sign: float, changes) -> None */
static PyObject *apply_side(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "apply_side(levels, keys, sign, changes)");
        return NULL;
    }
    PyObject *levels = args[0], *keys = args[1], *changes = args[3];
    double sign = PyFloat_AsDouble(args[2]);
    if (sign == -1.0 && PyErr_Occurred())
        return NULL;
    if (!PyDict_CheckExact(levels)) {
        PyErr_SetString(PyExc_TypeError, "levels must be a dict");
        return NULL;
    }
    if (check_keys(keys) < 0)
        return NULL;
    PyObject *seq = PySequence_Fast(changes, "changes must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **rows = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pxo, *qtyo;
        if (pair(rows[i], &pxo, &qtyo) < 0)
            goto fail;
        double qty = PyFloat_AsDouble(qtyo);
        if (qty == -1.0 && PyErr_Occurred())
            goto fail;
        double px = PyFloat_AsDouble(pxo);
        if (px == -1.0 && PyErr_Occurred())
            goto fail;
        int has = PyDict_Contains(levels, pxo);
        if (has < 0)
            goto fail;
        if (qty > 0.0) {
            if (!has) {
                if (px != px) {
                    PyErr_SetString(PyExc_ValueError, "NaN price");
                    goto fail;
                }
                double key = px * sign;
                PyObject *k = PyFloat_FromDouble(key);
                if (k == NULL)
                    goto fail;
                int rc = PyList_Insert(keys, bisect(keys, key, 1), k);
                Py_DECREF(k);
                if (rc < 0)
                    goto fail;
            }
            if (PyDict_SetItem(levels, pxo, qtyo) < 0)
                goto fail;
        } else if (has) {
            if (PyDict_DelItem(levels, pxo) < 0)
                goto fail;
            Py_ssize_t at = bisect(keys, px * sign, 0);
            if (PyList_SetSlice(keys, at, at + 1, NULL) < 0)
                goto fail;
        }
    }
    Py_DECREF(seq);
    Py_RETURN_NONE;
fail:
    Py_DECREF(seq);
    return NULL;
}

/* apply_text(keys: list, texts: list, sign: float, changes) -> None; changes hold the
 * venue's (price, size) strings. */
static PyObject *apply_text(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "apply_text(keys, texts, sign, changes)");
        return NULL;
    }
    PyObject *keys = args[0], *texts = args[1], *changes = args[3];
    double sign = PyFloat_AsDouble(args[2]);
    if (sign == -1.0 && PyErr_Occurred())
        return NULL;
    if (check_keys(keys) < 0 || check_keys(texts) < 0)
        return NULL;
    PyObject *seq = PySequence_Fast(changes, "changes must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **rows = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pxs, *szs;
        if (pair(rows[i], &pxs, &szs) < 0)
            goto fail;
        PyObject *f = PyFloat_FromString(pxs);
        if (f == NULL)
            goto fail;
        double k = PyFloat_AS_DOUBLE(f) * sign;
        Py_DECREF(f);
        f = PyFloat_FromString(szs);
        if (f == NULL)
            goto fail;
        double sz = PyFloat_AS_DOUBLE(f);
        Py_DECREF(f);
        Py_ssize_t at = bisect(keys, k, 0);
        int here = at < PyList_GET_SIZE(keys) && PyFloat_AS_DOUBLE(PyList_GET_ITEM(keys, at)) == k;
        if (sz > 0.0) {
            PyObject *row = PyTuple_Pack(2, pxs, szs);
            if (row == NULL)
                goto fail;
            if (here) {
                PyList_SetItem(texts, at, row); /* steals row */
            } else if (k != k) {
                Py_DECREF(row);
                PyErr_Format(PyExc_ValueError, "NaN price %R", pxs);
                goto fail;
            } else {
                PyObject *ko = PyFloat_FromDouble(k);
                if (ko == NULL || PyList_Insert(keys, at, ko) < 0 || PyList_Insert(texts, at, row) < 0) {
                    Py_XDECREF(ko);
                    Py_DECREF(row);
                    goto fail;
                }
                Py_DECREF(ko);
                Py_DECREF(row);
            }
        } else if (here) {
            if (PyList_SetSlice(keys, at, at + 1, NULL) < 0 || PyList_SetSlice(texts, at, at + 1, NULL) < 0)
                goto fail;
        }
    }
    Py_DECREF(seq);
    Py_RETURN_NONE;
fail:
    Py_DECREF(seq);
    return NULL;
}

static PyMethodDef methods[] = {
    {"apply_side", (PyCFunction)(void (*)(void))apply_side, METH_FASTCALL,
     "Apply (price, size) changes to one side of a book: size 0 removes the level."},
    {"apply_text", (PyCFunction)(void (*)(void))apply_text, METH_FASTCALL,
     "Apply the venue's (price, size) strings to one side of a checksum text book."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "perparb._levels", NULL, -1, methods};

PyMODINIT_FUNC PyInit__levels(void) { return PyModule_Create(&module); }
