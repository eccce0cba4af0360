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

/* One side's changes; 0 on success, -1 with an exception set. */
static int apply_changes(PyObject *levels, PyObject *keys, double sign, PyObject *changes) {
    if (!PyDict_CheckExact(levels)) {
        PyErr_SetString(PyExc_TypeError, "levels must be a dict");
        return -1;
    }
    if (check_keys(keys) < 0)
        return -1;
    PyObject *seq = PySequence_Fast(changes, "changes must be a sequence");
    if (seq == NULL)
        return -1;
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
    return 0;
fail:
    Py_DECREF(seq);
    return -1;
}

/* apply_side(levels: dict, keys: list, sign: float, changes) -> None */
static PyObject *apply_side(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "apply_side(levels, keys, sign, changes)");
        return NULL;
    }
    double sign = PyFloat_AsDouble(args[2]);
    if (sign == -1.0 && PyErr_Occurred())
        return NULL;
    if (apply_changes(args[0], args[1], sign, args[3]) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *str_levels, *str_keys, *str_best_level;

/* side.best_level = (px, size) of the side's first level, or None when it is empty. */
static int refresh(PyObject *side, PyObject *levels, PyObject *keys, double sign) {
    PyObject *best = Py_None;
    Py_INCREF(best);
    if (PyList_GET_SIZE(keys)) {
        PyObject *px = PyFloat_FromDouble(PyFloat_AS_DOUBLE(PyList_GET_ITEM(keys, 0)) * sign);
        PyObject *qty = px ? PyDict_GetItemWithError(levels, px) : NULL;
        if (qty == NULL) {
            if (px != NULL && !PyErr_Occurred())
                PyErr_SetObject(PyExc_KeyError, px);
            Py_XDECREF(px);
            Py_DECREF(best);
            return -1;
        }
        Py_DECREF(best);
        best = PyTuple_Pack(2, px, qty);
        Py_DECREF(px);
        if (best == NULL)
            return -1;
    }
    int rc = PyObject_SetAttr(side, str_best_level, best);
    Py_DECREF(best);
    return rc;
}

/* Both containers of a book side (perparb.book.Side), borrowed from the side's slots. */
static int side_parts(PyObject *side, PyObject **levels, PyObject **keys) {
    *levels = PyObject_GetAttr(side, str_levels);
    if (*levels == NULL)
        return -1;
    *keys = PyObject_GetAttr(side, str_keys);
    Py_DECREF(*levels); /* the side holds them */
    if (*keys == NULL)
        return -1;
    Py_DECREF(*keys);
    if (!PyList_CheckExact(*keys)) {
        PyErr_SetString(PyExc_TypeError, "keys must be a list");
        return -1;
    }
    return 0;
}

/* apply_book(bid_side, ask_side, bids, asks) -> bool: both sides' changes (bids first),
 * each side's best_level refreshed (also when a level stops the loop part way: the top
 * stays true), then whether the book is crossed (best bid >= best ask). */
static PyObject *apply_book(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "apply_book(bid_side, ask_side, bids, asks)");
        return NULL;
    }
    PyObject *bl, *bk, *al, *ak;
    if (side_parts(args[0], &bl, &bk) < 0 || side_parts(args[1], &al, &ak) < 0)
        return NULL;
    int rc = apply_changes(bl, bk, -1.0, args[2]);
    if (rc == 0)
        rc = apply_changes(al, ak, 1.0, args[3]);
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb); /* the refresh runs whatever happened */
    int rrc = refresh(args[0], bl, bk, -1.0) < 0 || refresh(args[1], al, ak, 1.0) < 0 ? -1 : 0;
    if (rc < 0) {
        if (rrc < 0)
            PyErr_Clear();
        PyErr_Restore(type, value, tb);
        return NULL;
    }
    if (rrc < 0)
        return NULL;
    if (PyList_GET_SIZE(bk) && PyList_GET_SIZE(ak) &&
        -PyFloat_AS_DOUBLE(PyList_GET_ITEM(bk, 0)) >= PyFloat_AS_DOUBLE(PyList_GET_ITEM(ak, 0)))
        Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

/* Clinger's fast path: a plain decimal ([-]digits[.digits]) whose digits, read as an
 * integer, fit in 53 bits and that has at most 22 digits after the point is that integer
 * divided by a power of ten, both exact doubles, so IEEE division rounds once and gives
 * exactly what strtod gives. Returns 1 with *out set, 0 for any other text. */
static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
#define TWO53 9007199254740992ULL

static int fast_decimal(const char *s, Py_ssize_t n, double *out) {
    Py_ssize_t i = 0;
    int neg = 0, digits = 0, frac = 0, dot = 0;
    unsigned long long m = 0;
    if (n > 0 && s[0] == '-') {
        neg = 1;
        i = 1;
    }
    for (; i < n; i++) {
        char ch = s[i];
        if (ch >= '0' && ch <= '9') {
            if (m > TWO53)
                return 0;
            m = m * 10 + (unsigned long long)(ch - '0');
            digits++;
            frac += dot;
        } else if (ch == '.' && !dot) {
            dot = 1;
        } else {
            return 0;
        }
    }
    if (digits == 0 || frac > 22 || m > TWO53)
        return 0;
    double x = (double)m / POW10[frac];
    *out = neg ? -x : x;
    return 1;
}

/* float(text) for the venue's number strings. Plain ASCII decimals ([-]digits[.digits]) are
 * read in place; anything else goes through float() itself, so errors and exotic forms
 * (spaces, underscores, exponents) behave exactly as in Python. Returns -1 on error. */
static int text_to_double(PyObject *text, double *out) {
    if (PyUnicode_Check(text) && PyUnicode_IS_ASCII(text)) {
        const char *s = (const char *)PyUnicode_DATA(text);
        Py_ssize_t n = PyUnicode_GET_LENGTH(text), i = 0, digits = 0, dots = 0;
        if (fast_decimal(s, n, out))
            return 0;
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
            /* a (price, size) tuple is kept as given (text_levels makes them) */
            PyObject *row = rows[i];
            if (PyTuple_CheckExact(row))
                Py_INCREF(row);
            else if ((row = PyTuple_Pack(2, pxs, szs)) == NULL)
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

/* (a, b) as a tuple of floats; Py_BuildValue would parse its format every time. A tuple
 * of two floats can never be part of a reference cycle, so it is left out of the cyclic
 * collector's lists at once (the collector itself would only untrack it on its first
 * pass, having walked it): a book snapshot makes thousands of them. */
static PyObject *pair_of(double a, double b) {
    PyObject *t = PyTuple_New(2), *x = PyFloat_FromDouble(a), *y = PyFloat_FromDouble(b);
    if (t == NULL || x == NULL || y == NULL) {
        Py_XDECREF(t);
        Py_XDECREF(x);
        Py_XDECREF(y);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, x);
    PyTuple_SET_ITEM(t, 1, y);
    PyObject_GC_UnTrack(t);
    return t;
}

/* A native (price, size) as a normalized (px, qty) tuple: the arithmetic of
 * Instrument.px / Instrument.qty. */
static PyObject *normalized(double p, double q, double s, double c, int inverse) {
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
    return pair_of(px, qty);
}

/* The (scale, contract_size, inverse) arguments every conversion takes. */
static int units(PyObject *const *args, double *s, double *c, int *inverse) {
    *s = PyFloat_AsDouble(args[0]);
    if (*s == -1.0 && PyErr_Occurred())
        return -1;
    *c = PyFloat_AsDouble(args[1]);
    if (*c == -1.0 && PyErr_Occurred())
        return -1;
    *inverse = PyObject_IsTrue(args[2]);
    return *inverse < 0 ? -1 : 0;
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
        PyObject *level = normalized(p, q, s, c, inverse);
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

/* text_levels(rows, scale, contract_size, inverse) -> (levels, texts): the venue's text rows
 * ["px", "size", ...] read once: normalized (px, qty) levels as to_levels makes them from
 * the numbers, and the (price, size) strings the checksum book keeps. */
static PyObject *text_levels(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "text_levels(rows, scale, contract_size, inverse)");
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
    PyObject *out = PyList_New(n), *texts = PyList_New(n);
    if (out == NULL || texts == NULL)
        goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *a = item(rows[i], 0), *b = a ? item(rows[i], 1) : NULL;
        if (b == NULL)
            goto fail;
        double p, q;
        if (text_to_double(a, &p) < 0 || text_to_double(b, &q) < 0)
            goto fail;
        PyObject *level = normalized(p, q, s, c, inverse);
        if (level == NULL)
            goto fail;
        PyList_SET_ITEM(out, i, level);
        PyObject *text = PyTuple_Pack(2, a, b);
        if (text == NULL)
            goto fail;
        PyList_SET_ITEM(texts, i, text);
    }
    Py_DECREF(seq);
    PyObject *both = PyTuple_Pack(2, out, texts);
    Py_DECREF(out);
    Py_DECREF(texts);
    return both;
fail:
    Py_XDECREF(out);
    Py_XDECREF(texts);
    Py_DECREF(seq);
    return NULL;
}

static PyObject *str_p, *str_s, *str_price, *str_size, *str_side, *str_id, *str_buy, *str_sell;

/* A float attribute of a decoded row (int or float); -1 with an exception on error. */
static int attr_double(PyObject *row, PyObject *name, double *out) {
    PyObject *v = PyObject_GetAttr(row, name);
    if (v == NULL)
        return -1;
    *out = PyFloat_AsDouble(v);
    Py_DECREF(v);
    return (*out == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

/* obj_levels(rows, scale, contract_size, inverse) -> list[(px, qty)]: level objects with
 * attributes p (price) and s (size), Gate's {"p": ..., "s": ...}, as normalized levels. */
static PyObject *obj_levels(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "obj_levels(rows, scale, contract_size, inverse)");
        return NULL;
    }
    double s, c;
    int inverse;
    if (units(args + 1, &s, &c, &inverse) < 0)
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
        double p, q;
        if (attr_double(rows[i], str_p, &p) < 0 || attr_double(rows[i], str_s, &q) < 0)
            goto fail;
        PyObject *level = normalized(p, q, s, c, inverse);
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

/* id_rows(rows, ids, mode, scale, contract_size, inverse) -> (bids, asks) | None: BitMEX
 * orderBookL2 rows (attributes id, side "Buy"/"Sell", size, price or None) of one symbol
 * as normalized levels, keeping ids (level id -> native price) as the rows change it.
 * mode 0: a partial (every row has its price; the ids are recorded; both sides come out
 * sorted, best first); 1: delete (size 0, the price from the row or else from ids, which
 * forgets the id); 2: insert or update (a row without a price takes it from ids).
 * None: a row names an id that ids does not know (an insert was lost). */
static PyObject *id_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "id_rows(rows, ids, mode, scale, contract_size, inverse)");
        return NULL;
    }
    PyObject *ids = args[1];
    if (!PyDict_CheckExact(ids)) {
        PyErr_SetString(PyExc_TypeError, "ids must be a dict");
        return NULL;
    }
    long mode = PyLong_AsLong(args[2]);
    if (mode == -1 && PyErr_Occurred())
        return NULL;
    double s, c;
    int inverse;
    if (units(args + 3, &s, &c, &inverse) < 0)
        return NULL;
    PyObject *seq = PySequence_Fast(args[0], "rows must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **rows = PySequence_Fast_ITEMS(seq);
    PyObject *sides[2] = {PyList_New(0), PyList_New(0)}; /* native (price, size), then normalized */
    PyObject *id = NULL, *price = NULL, *side = NULL, *result = NULL;
    if (sides[0] == NULL || sides[1] == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = rows[i];
        if ((id = PyObject_GetAttr(row, str_id)) == NULL || (price = PyObject_GetAttr(row, str_price)) == NULL ||
            (side = PyObject_GetAttr(row, str_side)) == NULL)
            goto done;
        int which;
        if (PyUnicode_Check(side) && PyUnicode_Compare(side, str_buy) == 0) {
            which = 0;
        } else if (PyUnicode_Check(side) && PyUnicode_Compare(side, str_sell) == 0) {
            which = 1;
        } else {
            PyErr_Format(PyExc_ValueError, "unknown side %R", side);
            goto done;
        }
        double size = 0.0;
        if (mode != 1 && attr_double(row, str_size, &size) < 0)
            goto done;
        if (mode == 0) {
            if (price == Py_None) {
                PyErr_Format(PyExc_ValueError, "partial row %S has no price", id);
                goto done;
            }
            if (PyDict_SetItem(ids, id, price) < 0)
                goto done;
        } else if (mode == 1) {
            PyObject *known = PyDict_GetItemWithError(ids, id);
            if (known == NULL && PyErr_Occurred())
                goto done;
            if (known != NULL) {
                if (price == Py_None) {
                    Py_INCREF(known);
                    Py_SETREF(price, known);
                }
                if (PyDict_DelItem(ids, id) < 0)
                    goto done;
            }
        } else if (price == Py_None) {
            PyObject *known = PyDict_GetItemWithError(ids, id);
            if (known == NULL && PyErr_Occurred())
                goto done;
            if (known != NULL) {
                Py_INCREF(known);
                Py_SETREF(price, known);
            }
        } else if (PyDict_SetItem(ids, id, price) < 0) {
            goto done;
        }
        if (price == Py_None) { /* an id never seen */
            Py_INCREF(Py_None);
            result = Py_None;
            goto done;
        }
        double p = PyFloat_AsDouble(price);
        if (p == -1.0 && PyErr_Occurred())
            goto done;
        PyObject *native = pair_of(p, size);
        if (native == NULL)
            goto done;
        int rc = PyList_Append(sides[which], native);
        Py_DECREF(native);
        if (rc < 0)
            goto done;
        Py_CLEAR(id);
        Py_CLEAR(price);
        Py_CLEAR(side);
    }
    if (mode == 0 && (PyList_Sort(sides[0]) < 0 || PyList_Reverse(sides[0]) < 0 || PyList_Sort(sides[1]) < 0))
        goto done;
    for (int k = 0; k < 2; k++) {
        PyObject *lst = sides[k];
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(lst); i++) {
            PyObject *native = PyList_GET_ITEM(lst, i);
            PyObject *level = normalized(PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(native, 0)),
                                         PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(native, 1)), s, c, inverse);
            if (level == NULL)
                goto done;
            PyList_SetItem(lst, i, level); /* steals level, drops native */
        }
    }
    result = PyTuple_Pack(2, sides[0], sides[1]);
done:
    Py_XDECREF(id);
    Py_XDECREF(price);
    Py_XDECREF(side);
    Py_XDECREF(sides[0]);
    Py_XDECREF(sides[1]);
    Py_DECREF(seq);
    return result;
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
    const char *s;
    if (PyUnicode_Check(text) && PyUnicode_IS_COMPACT_ASCII(text)) { /* the venues' numbers */
        s = (const char *)PyUnicode_DATA(text);
        n = PyUnicode_GET_LENGTH(text);
    } else {
        s = PyUnicode_Check(text) ? PyUnicode_AsUTF8AndSize(text, &n) : NULL;
    }
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
    {"apply_book", (PyCFunction)(void (*)(void))apply_book, METH_FASTCALL,
     "Apply bid and ask changes to a book's sides, refresh their best levels; returns whether the book is crossed."},
    {"text_levels", (PyCFunction)(void (*)(void))text_levels, METH_FASTCALL,
     "The venue's text rows as normalized (px, qty) levels and (price, size) strings."},
    {"apply_text", (PyCFunction)(void (*)(void))apply_text, METH_FASTCALL,
     "Apply the venue's (price, size) strings to one side of a checksum text book."},
    {"to_levels", (PyCFunction)(void (*)(void))to_levels, METH_FASTCALL,
     "Native [px, qty, ...] rows to normalized (px, qty) levels."},
    {"obj_levels", (PyCFunction)(void (*)(void))obj_levels, METH_FASTCALL,
     "Level objects with attributes p and s as normalized (px, qty) levels."},
    {"id_rows", (PyCFunction)(void (*)(void))id_rows, METH_FASTCALL,
     "BitMEX orderBookL2 rows of one symbol as normalized (bids, asks), keeping the id -> price map."},
    {"levels_ok", levels_ok, METH_O, "Whether every level has a finite positive price and size >= 0."},
    {"crc32_text", (PyCFunction)(void (*)(void))crc32_text, METH_FASTCALL,
     "CRC32 of bid1px:bid1sz:ask1px:ask1sz:... over the top depth levels, signed."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "perparb._levels", NULL, -1, methods};

PyMODINIT_FUNC PyInit__levels(void) {
    crc_init();
    if (!(str_levels = PyUnicode_InternFromString("levels")) || !(str_keys = PyUnicode_InternFromString("keys")) ||
        !(str_best_level = PyUnicode_InternFromString("best_level")))
        return NULL;
    if (!(str_p = PyUnicode_InternFromString("p")) || !(str_s = PyUnicode_InternFromString("s")) ||
        !(str_price = PyUnicode_InternFromString("price")) || !(str_size = PyUnicode_InternFromString("size")) ||
        !(str_side = PyUnicode_InternFromString("side")) || !(str_id = PyUnicode_InternFromString("id")) ||
        !(str_buy = PyUnicode_InternFromString("Buy")) || !(str_sell = PyUnicode_InternFromString("Sell")))
        return NULL;
    return PyModule_Create(&module);
}
