/* The compiled column builder of the parse stage (pipeline/parse/gather.py explains the
   interface; gather.py's Python twin gives the same columns where this is not built).

   It only reads Python objects msgspec has already decoded and checked (structs of str, bool
   and msgspec.Raw values): no JSON is parsed here. Struct fields are read through their slot
   offsets, resolved from the member descriptors of the first object's type at each step of a
   path; every later object must have exactly that type, or TypeError. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

/* A growable byte buffer. */
typedef struct {
    char *data;
    Py_ssize_t size;
    Py_ssize_t cap;
} Buf;

static int buf_reserve(Buf *b, Py_ssize_t extra) {
    if (b->size + extra <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 256;
    while (cap < b->size + extra) cap *= 2;
    char *p = PyMem_Realloc(b->data, (size_t)cap);
    if (!p) { PyErr_NoMemory(); return -1; }
    b->data = p;
    b->cap = cap;
    return 0;
}

static int buf_put(Buf *b, const void *src, Py_ssize_t n) {
    if (buf_reserve(b, n) < 0) return -1;
    memcpy(b->data + b->size, src, (size_t)n);
    b->size += n;
    return 0;
}

/* The slot offset of field `name` on `type` (a msgspec Struct, or any type with __slots__):
   looked up on the type, a member descriptor is returned as itself. */
static Py_ssize_t member_offset(PyTypeObject *type, PyObject *name) {
    if (!PyUnicode_Check(name)) {
        PyErr_SetString(PyExc_TypeError, "a path holds field names");
        return -1;
    }
    PyObject *descr = PyObject_GetAttr((PyObject *)type, name);
    if (descr == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) return -1;
        PyErr_Clear(); /* reported as any other field that is not a slot */
    }
    Py_ssize_t offset = -1;
    if (descr != NULL && Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        PyMemberDef *def = ((PyMemberDescrObject *)descr)->d_member;
        if (def->type == T_OBJECT_EX || def->type == T_OBJECT) offset = def->offset;
    }
    Py_XDECREF(descr);
    if (offset < 0)
        PyErr_Format(PyExc_TypeError, "%s.%U is not a slot holding an object", type->tp_name,
                     name);
    return offset;
}

#define MAX_DEPTH 8

/* One step of a path: the type seen there first and the field's offset in it. */
typedef struct {
    PyTypeObject *type;
    Py_ssize_t offset;
} Step;

/* Follows `names` from `obj`: the leaf object (borrowed), or Py_None when a step is None or
   the value is missing; NULL with an exception when an object has another type than the first
   one seen at that step. */
static PyObject *follow(PyObject *obj, PyObject *names, Step *steps) {
    Py_ssize_t depth = PyTuple_GET_SIZE(names);
    for (Py_ssize_t i = 0; i < depth; i++) {
        if (obj == Py_None) return Py_None;
        PyTypeObject *type = Py_TYPE(obj);
        if (steps[i].type == NULL) {
            Py_ssize_t offset = member_offset(type, PyTuple_GET_ITEM(names, i));
            if (offset < 0) return NULL;
            steps[i].type = type;
            steps[i].offset = offset;
        } else if (steps[i].type != type) {
            PyErr_Format(PyExc_TypeError, "expected %s, found %s", steps[i].type->tp_name,
                         type->tp_name);
            return NULL;
        }
        obj = *(PyObject **)((char *)obj + steps[i].offset);
        if (obj == NULL) return Py_None; /* an unset slot */
    }
    return obj;
}

/* Appends one leaf to a column of kind 's', 'S' or 'r'; sets *present to 0 for a null. */
static int put_text(char kind, PyObject *leaf, Buf *data, int *present) {
    if (kind == 's' || kind == 'S') {
        if (!PyUnicode_Check(leaf)) {
            PyErr_Format(PyExc_TypeError, "expected str, found %s", Py_TYPE(leaf)->tp_name);
            return -1;
        }
        Py_ssize_t len;
        const char *utf8 = PyUnicode_AsUTF8AndSize(leaf, &len);
        if (utf8 == NULL) return -1;
        if (len == 0 && kind == 'S') { /* 'S': an empty string is a null */
            *present = 0;
            return 0;
        }
        return buf_put(data, utf8, len);
    }
    /* 'r': JSON text as msgspec.Raw or bytes; the text `null` is a null. */
    Py_buffer view;
    if (PyObject_GetBuffer(leaf, &view, PyBUF_SIMPLE) < 0) return -1;
    int rc = 0;
    if (view.len == 4 && memcmp(view.buf, "null", 4) == 0) *present = 0;
    else rc = buf_put(data, view.buf, view.len);
    PyBuffer_Release(&view);
    return rc;
}

/* One column being built: its path, kind and buffers. */
typedef struct {
    PyObject *names; /* borrowed from the paths tuple */
    char kind;
    Step steps[MAX_DEPTH];
    Buf data;
    int32_t *offsets; /* 's', 'S', 'r' */
    uint8_t *valid;
    uint8_t *values; /* 'b' */
    PyObject *leaves; /* 'o' */
    Py_ssize_t nulls;
} Column;

static void column_free(Column *col) {
    PyMem_Free(col->data.data);
    PyMem_Free(col->offsets);
    PyMem_Free(col->valid);
    PyMem_Free(col->values);
    Py_CLEAR(col->leaves);
}

static int column_init(Column *col, PyObject *names, char kind, Py_ssize_t n) {
    memset(col, 0, sizeof(*col));
    if (!PyTuple_Check(names) || PyTuple_GET_SIZE(names) > MAX_DEPTH) {
        PyErr_SetString(PyExc_TypeError, "a path is a tuple of at most 8 field names");
        return -1;
    }
    if (kind != 's' && kind != 'S' && kind != 'r' && kind != 'b' && kind != 'o') {
        PyErr_Format(PyExc_ValueError, "unknown kind %c", kind);
        return -1;
    }
    col->names = names;
    col->kind = kind;
    size_t bitmap_bytes = (size_t)(n + 7) / 8 + 1;
    col->valid = PyMem_Calloc(bitmap_bytes, 1);
    if (kind == 'b') col->values = PyMem_Calloc(bitmap_bytes, 1);
    if (kind == 's' || kind == 'S' || kind == 'r')
        col->offsets = PyMem_Calloc((size_t)n + 1, sizeof(int32_t));
    if (kind == 'o') col->leaves = PyList_New(n);
    if (col->valid == NULL || (kind == 'b' && col->values == NULL) ||
        ((kind == 's' || kind == 'S' || kind == 'r') && col->offsets == NULL) ||
        (kind == 'o' && col->leaves == NULL)) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* Reads row i of one column from `obj`. */
static int column_read(Column *col, PyObject *obj, Py_ssize_t i) {
    PyObject *leaf = follow(obj, col->names, col->steps);
    if (leaf == NULL) return -1;
    int present = leaf != Py_None;
    Py_INCREF(leaf); /* held while it is read: nothing below may free it under us */
    if (col->kind == 'o') {
        PyList_SET_ITEM(col->leaves, i, leaf); /* the list takes the reference */
        return 0;
    }
    int rc = 0;
    if (present && col->kind == 'b') {
        if (!PyBool_Check(leaf)) {
            PyErr_Format(PyExc_TypeError, "expected bool, found %s", Py_TYPE(leaf)->tp_name);
            rc = -1;
        } else if (leaf == Py_True) {
            col->values[i >> 3] |= (uint8_t)(1u << (i & 7));
        }
    } else if (present) {
        rc = put_text(col->kind, leaf, &col->data, &present);
    }
    Py_DECREF(leaf);
    if (rc < 0) return -1;
    if (present) col->valid[i >> 3] |= (uint8_t)(1u << (i & 7));
    else col->nulls++;
    if (col->offsets) {
        if (col->data.size > INT32_MAX) {
            PyErr_SetString(PyExc_OverflowError, "a column above 2 GiB of text");
            return -1;
        }
        col->offsets[i + 1] = (int32_t)col->data.size;
    }
    return 0;
}

/* The finished column: (validity or None, int32 offsets, data) for 's', 'S' and 'r',
   (validity or None, values) bitmaps for 'b', the list of leaves for 'o'. */
static PyObject *column_result(Column *col, Py_ssize_t n) {
    if (col->kind == 'o') {
        PyObject *leaves = col->leaves;
        col->leaves = NULL;
        return leaves;
    }
    Py_ssize_t bitmap_bytes = (n + 7) / 8;
    PyObject *out = NULL;
    PyObject *validity = col->nulls ? PyBytes_FromStringAndSize((char *)col->valid, bitmap_bytes)
                                    : Py_NewRef(Py_None);
    PyObject *second =
        col->kind == 'b'
            ? PyBytes_FromStringAndSize((char *)col->values, bitmap_bytes)
            : PyBytes_FromStringAndSize((char *)col->offsets, (Py_ssize_t)sizeof(int32_t) * (n + 1));
    PyObject *third = col->kind == 'b'
                          ? Py_NewRef(Py_None)
                          : PyBytes_FromStringAndSize(col->data.data ? col->data.data : "",
                                                      col->data.size);
    if (validity && second && third)
        out = col->kind == 'b' ? PyTuple_Pack(2, validity, second)
                               : PyTuple_Pack(3, validity, second, third);
    Py_XDECREF(validity);
    Py_XDECREF(second);
    Py_XDECREF(third);
    return out;
}

/* gather(objs, paths, kinds) -> one column per path (see column_result()). Objects are read
   one after the other, each for every column: an object's fields are read while it is in the
   CPU's cache, which matters when the objects come in an order other than their allocation's
   (records merged from several documents). */
static PyObject *gather(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *objs, *paths;
    const char *kinds;
    Py_ssize_t nkinds;
    if (!PyArg_ParseTuple(args, "O!O!s#", &PyList_Type, &objs, &PyTuple_Type, &paths, &kinds,
                          &nkinds))
        return NULL;
    Py_ssize_t ncols = PyTuple_GET_SIZE(paths);
    if (nkinds != ncols) {
        PyErr_SetString(PyExc_ValueError, "one kind per path");
        return NULL;
    }
    /* A tuple of the objects, holding a reference to each, whatever happens to the list. */
    PyObject *items = PyList_AsTuple(objs);
    if (items == NULL) return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(items);
    PyObject *result = NULL;
    Column *cols = PyMem_Calloc((size_t)ncols + 1, sizeof(Column));
    if (cols == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t c = 0; c < ncols; c++)
        if (column_init(&cols[c], PyTuple_GET_ITEM(paths, c), kinds[c], n) < 0) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *obj = PyTuple_GET_ITEM(items, i);
        for (Py_ssize_t c = 0; c < ncols; c++)
            if (column_read(&cols[c], obj, i) < 0) goto done;
    }
    result = PyList_New(ncols);
    for (Py_ssize_t c = 0; result != NULL && c < ncols; c++) {
        PyObject *col = column_result(&cols[c], n);
        if (col == NULL) Py_CLEAR(result);
        else PyList_SET_ITEM(result, c, col);
    }
done:
    if (cols != NULL) {
        for (Py_ssize_t c = 0; c < ncols; c++) column_free(&cols[c]);
        PyMem_Free(cols);
    }
    Py_DECREF(items);
    return result;
}

/* Whether text may hold a sessionToken key (records.py redacts its value): the key in any
   letter case, or a backslash-u escape (a key may be spelt with one). The same test as
   `b"sessiontoken" in text.lower() or b"\\u" in text`, in one pass. ASCII letters differ from
   their capitals in bit 0x20 only, and no other byte becomes a letter with it set:
   (c | 0x20) == 's' holds for 's' and 'S' alone, the two bytes.lower() maps to 's'. */
static int may_hold_token(const unsigned char *p, Py_ssize_t n) {
    static const unsigned char key[] = "sessiontoken";
    enum { KEY = 12 };
    /* Horspool's search, in any letter case: how far the window may move on seeing byte b as
       its last, the same for both cases of a letter. Mostly a step of 12 bytes at a time. */
    static unsigned char shift[256];
    static int ready = 0;
    if (!ready) {
        for (int b = 0; b < 256; b++) shift[b] = KEY;
        for (int j = 0; j < KEY - 1; j++) {
            shift[key[j]] = (unsigned char)(KEY - 1 - j);
            shift[key[j] ^ 0x20] = (unsigned char)(KEY - 1 - j);
        }
        ready = 1;
    }
    for (Py_ssize_t i = 0; i + KEY <= n; i += shift[p[i + KEY - 1]]) {
        Py_ssize_t j = KEY - 1;
        while (j >= 0 && (p[i + j] | 0x20) == key[j]) j--;
        if (j < 0) return 1;
    }
    /* A backslash-u escape: backslashes are rare, and memchr finds them fast. */
    const unsigned char *at = p, *end = p + n;
    while ((at = memchr(at, '\\', (size_t)(end - at))) != NULL) {
        if (at + 1 < end && at[1] == 'u') return 1;
        at++;
    }
    return 0;
}

/* token_candidates(values) -> the indices of the values (bytes-like, or None: skipped) that
   may hold a sessionToken key. */
static PyObject *token_candidates(PyObject *Py_UNUSED(module), PyObject *values) {
    if (!PyList_Check(values)) {
        PyErr_SetString(PyExc_TypeError, "token_candidates takes a list");
        return NULL;
    }
    PyObject *items = PyList_AsTuple(values);
    if (items == NULL) return NULL;
    PyObject *found = PyList_New(0);
    for (Py_ssize_t i = 0; found != NULL && i < PyTuple_GET_SIZE(items); i++) {
        PyObject *value = PyTuple_GET_ITEM(items, i);
        if (value == Py_None) continue;
        Py_buffer view;
        if (PyObject_GetBuffer(value, &view, PyBUF_SIMPLE) < 0) {
            Py_CLEAR(found);
            break;
        }
        int hit = may_hold_token((const unsigned char *)view.buf, view.len);
        PyBuffer_Release(&view);
        if (!hit) continue;
        PyObject *index = PyLong_FromSsize_t(i);
        if (index == NULL || PyList_Append(found, index) < 0) Py_CLEAR(found);
        Py_XDECREF(index);
    }
    Py_DECREF(items);
    return found;
}

static PyMethodDef methods[] = {
    {"gather", gather, METH_VARARGS, "gather(objs, paths, kinds): one column per path."},
    {"token_candidates", token_candidates, METH_O,
     "token_candidates(values): indices of the values that may hold a sessionToken key."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_columns", "The compiled column builder of the parse stage.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__columns(void) { return PyModule_Create(&module); }
