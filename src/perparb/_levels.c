/* Compiled form of the two per-level loops every book message runs (perparb.book and the
 * checksum text sides in perparb.feeds.booksync). Behaviour is exactly that of the Python
 * loops they replace (perparb/levels.py), which stay the fallback when this module is not
 * built; the tests run both on the same inputs.
 *
 * Also: native rows to normalized levels (perparb.model.Instrument.levels) and the
 * plausibility test of a list of levels (perparb.validate).
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


/* float(text) for the venue's number strings. Plain ASCII decimals ([-]digits[.digits]) are
 * read in place; anything else goes through float() itself, so errors and exotic forms
 * (spaces, underscores, exponents) behave exactly as in Python. Returns -1 on error. */
static int text_to_double(PyObject *text, double *out) {
    if (PyUnicode_Check(text) && PyUnicode_IS_ASCII(text)) {
        const char *s = (const char *)PyUnicode_DATA(text);
        Py_ssize_t n = PyUnicode_GET_LENGTH(text), i = 0, digits = 0, dots = 0;
        if (n > 0 && s[0] == '-')
            i = 1;
        for (; i < n; i++) {
            char ch = s[i];
            if (ch >= '0' && ch <= '9')
                digits++;
            else if (ch == '.')
                dots++;
            else
                break;
        }
        if (i == n && digits > 0 && dots <= 1 && n < 64) {
            char *end;
            double x = PyOS_string_to_double(s, &end, NULL);
            if (x == -1.0 && PyErr_Occurred())
                return -1;
            if (end == s + n) {
                *out = x;
                return 0;
            }
        }
    }
    PyObject *f = PyFloat_FromString(text);
    if (f == NULL)
        return -1;
    *out = PyFloat_AS_DOUBLE(f);
    Py_DECREF(f);
    return 0;
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
        double k, sz;
        if (text_to_double(pxs, &k) < 0 || text_to_double(szs, &sz) < 0)
            goto fail;
        k *= sign;
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

/* Item i of a row (tuple or list), borrowed; NULL with IndexError or TypeError as row[i] would. */
static PyObject *item(PyObject *row, Py_ssize_t i) {
    if (PyTuple_Check(row) || PyList_Check(row)) {
        if (PySequence_Fast_GET_SIZE(row) > i)
            return PySequence_Fast_GET_ITEM(row, i);
        PyErr_SetString(PyExc_IndexError, "a level row needs a price and a size");  /* as row[1] would */
        return NULL;
    }
    PyErr_SetString(PyExc_TypeError, "a level row must be a list or tuple of price and size");
    return NULL;
}

/* to_levels(rows, scale, contract_size, inverse) -> list[(px, qty)]: native rows
 * [px, qty, ...] to normalized levels, the arithmetic of Instrument.px / Instrument.qty. */
static PyObject *to_levels(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "to_levels(rows, scale, contract_size, inverse)");
        return NULL;
    }
    double s = PyFloat_AsDouble(args[1]);
    if (s == -1.0 && PyErr_Occurred())
        return NULL;
    double c = PyFloat_AsDouble(args[2]);
    if (c == -1.0 && PyErr_Occurred())
        return NULL;
    int inverse = PyObject_IsTrue(args[3]);
    if (inverse < 0)
        return NULL;
    PyObject *seq = PySequence_Fast(args[0], "rows must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **rows = PySequence_Fast_ITEMS(seq);
    PyObject *out = PyList_New(n);
    if (out == NULL)
        goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *a = item(rows[i], 0), *b = a ? item(rows[i], 1) : NULL;
        if (b == NULL)
            goto fail;
        double p = PyFloat_AsDouble(a);
        if (p == -1.0 && PyErr_Occurred())
            goto fail;
        double q = PyFloat_AsDouble(b);
        if (q == -1.0 && PyErr_Occurred())
            goto fail;
        double px, qty;
        if (inverse) {
            px = p / s;
            qty = p != 0.0 ? q * c / p : 0.0;
        } else if (s == 1.0) {
            px = p;
            qty = q * c;
        } else {
            px = p / s;
            qty = q * c * s;
        }
        PyObject *level = Py_BuildValue("(dd)", px, qty);
        if (level == NULL)
            goto fail;
        PyList_SET_ITEM(out, i, level);
    }
    Py_DECREF(seq);
    return out;
fail:
    Py_XDECREF(out);
    Py_DECREF(seq);
    return NULL;
}

/* levels_ok(levels) -> bool: every level a (price, size) pair of floats with
 * 0 < price < inf and 0 <= size < inf. False also for anything else (the caller's own
 * loop then says what is wrong). */
static PyObject *levels_ok(PyObject *self, PyObject *levels) {
    if (!PyList_CheckExact(levels))
        Py_RETURN_FALSE;
    Py_ssize_t n = PyList_GET_SIZE(levels);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = PyList_GET_ITEM(levels, i), *a, *b;
        if (PyTuple_CheckExact(row) && PyTuple_GET_SIZE(row) == 2) {
            a = PyTuple_GET_ITEM(row, 0);
            b = PyTuple_GET_ITEM(row, 1);
        } else if (PyList_CheckExact(row) && PyList_GET_SIZE(row) == 2) {
            a = PyList_GET_ITEM(row, 0);
            b = PyList_GET_ITEM(row, 1);
        } else {
            Py_RETURN_FALSE;
        }
        if (!PyFloat_CheckExact(a) || !PyFloat_CheckExact(b))
            Py_RETURN_FALSE;
        double px = PyFloat_AS_DOUBLE(a), qty = PyFloat_AS_DOUBLE(b);
        if (!(0.0 < px && px < Py_HUGE_VAL && 0.0 <= qty && qty < Py_HUGE_VAL))
            Py_RETURN_FALSE;
    }
    Py_RETURN_TRUE;
}

/* CRC32 (the zlib/IEEE polynomial) of the venues' checksum text: "bid1px:bid1sz:ask1px:
 * ask1sz:..." over the top `depth` levels of each side, the longer side continuing alone,
 * computed piece by piece without building the string. */
static unsigned int crc_table[256];

static void crc_init(void) {
    for (unsigned int i = 0; i < 256; i++) {
        unsigned int c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static int crc_text(unsigned int *crc, PyObject *text, int *first) {
    Py_ssize_t n;
    const char *s = PyUnicode_Check(text) ? PyUnicode_AsUTF8AndSize(text, &n) : NULL;
    if (s == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "checksum levels must be text");
        return -1;
    }
    unsigned int c = *crc;
    if (!*first)
        c = crc_table[(c ^ (unsigned char)':') & 0xff] ^ (c >> 8);
    *first = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        c = crc_table[(c ^ (unsigned char)s[i]) & 0xff] ^ (c >> 8);
    *crc = c;
    return 0;
}

static int crc_level(unsigned int *crc, PyObject *level, int *first) {
    PyObject *a, *b;
    if (pair(level, &a, &b) < 0)
        return -1;
    return crc_text(crc, a, first) < 0 ? -1 : crc_text(crc, b, first);
}

/* crc32_text(bids, asks, depth) -> signed 32-bit int */
static PyObject *crc32_text(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyList_Check(args[0]) || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "crc32_text(bids: list, asks: list, depth: int)");
        return NULL;
    }
    Py_ssize_t depth = PyLong_AsSsize_t(args[2]);
    if (depth == -1 && PyErr_Occurred())
        return NULL;
    PyObject *bids = args[0], *asks = args[1];
    Py_ssize_t nb = PyList_GET_SIZE(bids), na = PyList_GET_SIZE(asks);
    if (nb > depth)
        nb = depth;
    if (na > depth)
        na = depth;
    unsigned int crc = 0xFFFFFFFFu;
    int first = 1;
    for (Py_ssize_t i = 0; i < nb || i < na; i++) {
        if (i < nb && crc_level(&crc, PyList_GET_ITEM(bids, i), &first) < 0)
            return NULL;
        if (i < na && crc_level(&crc, PyList_GET_ITEM(asks, i), &first) < 0)
            return NULL;
    }
    crc ^= 0xFFFFFFFFu;
    long long signed_crc = crc >= 0x80000000u ? (long long)crc - 0x100000000LL : (long long)crc;
    return PyLong_FromLongLong(signed_crc);
}

static PyMethodDef methods[] = {
    {"apply_side", (PyCFunction)(void (*)(void))apply_side, METH_FASTCALL,
     "Apply (price, size) changes to one side of a book: size 0 removes the level."},
    {"apply_text", (PyCFunction)(void (*)(void))apply_text, METH_FASTCALL,
     "Apply the venue's (price, size) strings to one side of a checksum text book."},
    {"to_levels", (PyCFunction)(void (*)(void))to_levels, METH_FASTCALL,
     "Native [px, qty, ...] rows to normalized (px, qty) levels."},
    {"levels_ok", levels_ok, METH_O, "Whether every level has a finite positive price and size >= 0."},
    {"crc32_text", (PyCFunction)(void (*)(void))crc32_text, METH_FASTCALL,
     "CRC32 of bid1px:bid1sz:ask1px:ask1sz:... over the top depth levels, signed."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "perparb._levels", NULL, -1, methods};

PyMODINIT_FUNC PyInit__levels(void) {
    crc_init();
    return PyModule_Create(&module);
}
