/*
 * yaml.h - strict, schema-driven reading of YAML configuration with libyaml,
 * and the quoting byline uses when it writes YAML.
 *
 * Reading: bl_yaml_load() parses a whole file into a libyaml document;
 * bl_yaml_map() walks one mapping against a table of known keys, calling a
 * parser per key that stores the value at an offset in the caller's struct.
 * Every problem is appended to the error buffer as
 *   "file:line:col: message\n"
 * (1-based line and column of the offending node) and the walk goes on, so
 * a user sees every mistake at once. Unknown keys are errors (with a
 * "did you mean" hint), as are duplicate keys, which plain libyaml accepts.
 * Anchors and aliases are refused: configuration has no use for them and
 * they make a few bytes expand into a large tree.
 */
#ifndef BL_CONFIG_YAML_H
#define BL_CONFIG_YAML_H

#include <yaml.h>
#include "core/buf.h"

#define BL_YAML_MAX_KEYS 24   /* keys per table (bl_yaml_map's bound) */

typedef struct {
    const char *file;     /* path shown in messages (borrowed) */
    const char *dir;      /* relative paths resolve against this (borrowed) */
    yaml_document_t doc;
    int loaded;           /* doc must be deleted */
    bl_buf_t *errors;     /* borrowed */
    bl_buf_t *warnings;   /* borrowed; NULL: warnings go to the log */
    unsigned nerrors;     /* errors reported through this reader */
    void *ctx;            /* for the caller's value parsers */
} bl_yaml_t;

typedef struct bl_yaml_key_s bl_yaml_key_t;

/* A value parser: stores node `v` (the value of key k) at `dst` (the
 * caller's struct plus k->off). Returns BL_OK or BL_ERROR (already reported). */
typedef int (*bl_yaml_fn)(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k);

struct bl_yaml_key_s {
    const char *name;    /* NULL ends a table */
    bl_yaml_fn parse;
    size_t off;          /* where in the destination struct */
    uint64_t min, max;   /* bounds for numbers and durations (ms) */
    const bl_yaml_key_t *sub; /* nested table for bl_yaml_submap */
    unsigned flags;      /* BL_YAML_* */
};

enum {
    BL_YAML_REQUIRED = 1 << 0,  /* missing key is an error */
    BL_YAML_FILE = 1 << 1,      /* bl_yaml_path: must be a readable regular file */
    BL_YAML_SECRET = 1 << 2,    /* bl_yaml_path: warn if others may read it */
    BL_YAML_DIR = 1 << 3        /* bl_yaml_path: if it exists, a directory */
};

/*
 * Reads and parses `y->file` (at most `max` bytes). Returns BL_OK with
 * y->doc loaded, BL_DECLINED if the file holds no document (empty or only
 * comments), or BL_ERROR with the reason reported. The caller sets file,
 * dir, errors and warnings first and calls bl_yaml_free() in every case.
 */
int bl_yaml_load(bl_yaml_t *y, size_t max);

/* Same, from memory (for tests and fuzzing); `y->file` names it. */
int bl_yaml_load_mem(bl_yaml_t *y, const char *data, size_t len);

void bl_yaml_free(bl_yaml_t *y);

/* Returns the root node, or NULL for an empty document. */
yaml_node_t *bl_yaml_root(bl_yaml_t *y);

/* Returns the node with `index` in y's document (libyaml's indices). */
yaml_node_t *bl_yaml_node(bl_yaml_t *y, int index);

/* Reports an error / a warning at node n (NULL: no position). A report is
 * one line: control characters in it show as '?', and one longer than
 * 2 * BL_PATH_MAX + 1024 bytes is cut there. */
void bl_yaml_error(bl_yaml_t *y, const yaml_node_t *n, const char *fmt, ...) BL_PRINTF(3, 4);
void bl_yaml_warn(bl_yaml_t *y, const yaml_node_t *n, const char *fmt, ...) BL_PRINTF(3, 4);

/* Reports an error at a position in y's file (NULL: no position). */
void bl_yaml_error_at(bl_yaml_t *y, const yaml_mark_t *m, const char *fmt, ...) BL_PRINTF(3, 4);

/*
 * Walks mapping `m` against table `keys`: reports a non-mapping, unknown
 * keys, duplicate keys and missing required keys; calls each known key's
 * parser with dst + k->off. If `found` is not NULL it receives, per table
 * index, the value node of that key or NULL. Returns BL_OK if no error was
 * reported during the walk, else BL_ERROR.
 */
int bl_yaml_map(bl_yaml_t *y, yaml_node_t *m, const bl_yaml_key_t *keys, void *dst,
                yaml_node_t **found);

/* Returns found[i] for the key `name` of table `keys`, or NULL. */
yaml_node_t *bl_yaml_found(const bl_yaml_key_t *keys, yaml_node_t **found, const char *name);

/* Returns 1 if n is a plain null ("", "~", "null"; unquoted), else 0. */
int bl_yaml_is_null(const yaml_node_t *n);

/* Returns 1 if n is a sequence, reporting "expected a list" otherwise. */
int bl_yaml_expect_seq(bl_yaml_t *y, yaml_node_t *n, const char *what);

/* Value parsers for bl_yaml_key_t.parse. */
int bl_yaml_str(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k);      /* char ** */
int bl_yaml_path(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k);     /* char **, absolute,
                                                                                          < BL_PATH_MAX bytes */
int bl_yaml_uint(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k);     /* unsigned * */
int bl_yaml_int(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k);      /* int * */
int bl_yaml_duration(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k); /* unsigned * (ms) */
int bl_yaml_submap(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k);   /* k->sub on dst */
int bl_yaml_bool(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k);     /* int * (0/1): plain
                                                                                          true or false */
int bl_yaml_size(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k);     /* uint64_t * (bytes) */

/*
 * Returns a scalar's text as a new NUL-terminated string, or NULL after
 * reporting "<what>: expected a string" (not a scalar), a NUL byte, or OOM. A plain
 * null is returned as NULL without a report only if `null_ok`.
 */
char *bl_yaml_strdup(bl_yaml_t *y, yaml_node_t *v, const char *what, int null_ok);

/* Appends `s` as a YAML scalar: plain when that cannot be misread (starts
 * with a letter, only [A-Za-z0-9._/-], not a boolean or null word), else
 * double-quoted, escaping what a reader would refuse or fold (controls,
 * C1 controls, NEL, U+2028/2029, U+FEFF, U+FFFE/FFFF), so it reads back as
 * `s`. Returns BL_OK, or BL_ERROR when out of room or when `s` is not UTF-8
 * (nothing is appended then: no YAML text reads back as those bytes). */
int bl_yaml_put_scalar(bl_buf_t *b, const char *s);

#endif
