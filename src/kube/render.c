/*
 * render.c - a bl_kreq_t as the kubectl command a person would have typed,
 * and as JSON members for the structured audit record.
 *
 * Everything that came from the wire is untrusted: each such word is
 * shell-quoted so the rendered line reads as exactly one command with
 * exactly the words the request carried, and bytes outside printable ASCII
 * are written as $'\xHH' escapes, so no newline, terminal escape or
 * look-alike Unicode ever reaches the audit line raw.
 */
#include <stdio.h>
#include "kube/names.h"
#include "kube/reqinfo.h"

/* An output cursor that remembers the first failure, so rendering code can
 * append freely and check once at the end. */
typedef struct {
    bl_buf_t *out;
    int err;
} bl_rw_t;

static void bl_rw_raw(bl_rw_t *w, const char *s, size_t n)
{
    if (!w->err && bl_buf_append(w->out, s, n) != BL_OK)
        w->err = 1;
}

/* Appends " " and a literal byline chose (never wire data). */
static void bl_rw_lit(bl_rw_t *w, const char *s)
{
    bl_rw_raw(w, " ", 1);
    bl_rw_raw(w, s, strlen(s));
}

static int bl_streq(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

/* Bytes that need no quoting in a shell word (after the command name). */
static int bl_sh_safe(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("_-./:=@%+,", c) != NULL);
}

/* Appends s quoted for a POSIX shell: bare when safe, '...' when printable,
 * $'...' (bash/zsh ANSI-C quoting) when it holds anything else. */
static void bl_rw_quoted(bl_rw_t *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    int plain = 1, printable = 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        plain &= bl_sh_safe(c);
        printable &= c >= 0x20 && c < 0x7f;
    }
    if (n > 0 && plain) {
        bl_rw_raw(w, s, n);
        return;
    }
    bl_rw_raw(w, printable ? "'" : "$'", printable ? 1 : 2);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[4] = { '\\', 'x', hex[c >> 4], hex[c & 15] };
        if (printable && c == '\'')
            bl_rw_raw(w, "'\\''", 4);
        else if (printable || (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\'))
            bl_rw_raw(w, s + i, 1);
        else if (c == '\'' || c == '\\')
            bl_rw_raw(w, c == '\'' ? "\\'" : "\\\\", 2);
        else if (c == '\n')
            bl_rw_raw(w, "\\n", 2);
        else if (c == '\t')
            bl_rw_raw(w, "\\t", 2);
        else
            bl_rw_raw(w, esc, 4);
    }
    bl_rw_raw(w, "'", 1);
}

/* Appends " " and a quoted word from the wire. */
static void bl_rw_word(bl_rw_t *w, const char *s)
{
    bl_rw_raw(w, " ", 1);
    bl_rw_quoted(w, s, strlen(s));
}

/* Appends " <flag><quoted value>", e.g. " --field-selector=" + value. */
static void bl_rw_flag(bl_rw_t *w, const char *flag, const char *v)
{
    bl_rw_lit(w, flag);
    bl_rw_quoted(w, v, strlen(v));
}

/* Rendering helpers ------------------------------------------------------- */

/* " <type>[/<name>]" as one quoted word: the singular type when `singular`
 * (objects, and creates whose name is unknown), the plural for collections;
 * "/<name>" when `named` and the request has a name. */
static void bl_render_obj(bl_rw_t *w, const bl_kreq_t *r, int singular, int named)
{
    enum { TYPE_MAX = sizeof(r->resource) + sizeof(r->api_group) + 1 };
    char word[TYPE_MAX + 1 + sizeof(r->name)];
    int trunc = 0;
    size_t n = bl_kres_word(r->api_group, r->resource, singular, word, TYPE_MAX, &trunc);
    if (named && r->name[0] != '\0') {
        size_t nl = strlen(r->name);
        word[n] = '/';
        memcpy(word + n + 1, r->name, nl + 1);
        n += 1 + nl;
    }
    bl_rw_raw(w, " ", 1);
    bl_rw_quoted(w, word, n);
}

/* A pod named bare (exec, logs, attach), unless the name could pass for a flag. */
static void bl_render_pod(bl_rw_t *w, const bl_kreq_t *r)
{
    if (r->name[0] == '-')
        bl_render_obj(w, r, 1, 1);
    else
        bl_rw_word(w, r->name);
}

static int bl_is_cluster_scoped(const bl_kreq_t *r)
{
    const bl_kres_t *e = bl_kres_find(r->api_group, r->resource);
    return e != NULL && (e->flags & BL_KRES_CLUSTER);
}

/* " -n <ns>"; for collections without one, " -A" unless the resource is known
 * to be cluster-scoped (-A is harmless where kubectl does not need it). */
static void bl_render_ns(bl_rw_t *w, const bl_kreq_t *r, int collection)
{
    int ns_object = r->api_group[0] == '\0' && bl_streq(r->resource, "namespaces");
    if (r->namespace_[0] != '\0' && !ns_object) {
        bl_rw_lit(w, "-n");
        bl_rw_word(w, r->namespace_);
    } else if (collection && r->namespace_[0] == '\0' && !bl_is_cluster_scoped(r)) {
        bl_rw_lit(w, "-A");
    }
}

static void bl_render_sub(bl_rw_t *w, const bl_kreq_t *r)
{
    if (r->subresource[0] != '\0')
        bl_rw_flag(w, "--subresource=", r->subresource);
}

/* Returns 1 if the field selector says nothing but the name already shown. */
static int bl_fsel_is_name(const bl_kreq_t *r)
{
    const char *s = r->field_selector;
    size_t n = strlen("metadata.name");
    if (strncmp(s, "metadata.name", n) != 0)
        return 0;
    s += n;
    s += s[0] == '=' && s[1] == '=' ? 2 : s[0] == '=' ? 1 : 0;
    return s != r->field_selector + n && bl_streq(s, r->name);
}

/* " -l <sel> --field-selector=<sel>" for collections. */
static void bl_render_selectors(bl_rw_t *w, const bl_kreq_t *r)
{
    if (r->label_selector[0] != '\0') {
        bl_rw_lit(w, "-l");
        bl_rw_word(w, r->label_selector);
    }
    if (r->field_selector[0] != '\0' && !bl_fsel_is_name(r))
        bl_rw_flag(w, "--field-selector=", r->field_selector);
}

/* Returns 1 if the Kubectl-Command header is exactly `cmd`. */
static int bl_kcmd_is(bl_str_t kcmd, const char *cmd)
{
    return bl_str_eq(bl_str_trim(kcmd), cmd);
}

/* Commands with a form of their own --------------------------------------- */

static void bl_render_exec(bl_rw_t *w, const bl_kreq_t *r, int attach)
{
    bl_rw_lit(w, attach ? "attach" : "exec");
    bl_render_pod(w, r);
    bl_render_ns(w, r, 0);
    if (r->container[0] != '\0') {
        bl_rw_lit(w, "-c");
        bl_rw_word(w, r->container);
    }
    if (r->stdin_)
        bl_rw_lit(w, "-i");
    if (r->tty)
        bl_rw_lit(w, "-t");
    if (!attach && r->argc > 0) {
        bl_rw_lit(w, "--");
        for (size_t i = 0; i < r->argc; i++)
            bl_rw_word(w, bl_kreq_arg(r, i));
    }
}

static void bl_render_logs(bl_rw_t *w, const bl_kreq_t *r)
{
    char n[32];
    bl_rw_lit(w, "logs");
    bl_render_pod(w, r);
    bl_render_ns(w, r, 0);
    if (r->container[0] != '\0') {
        bl_rw_lit(w, "-c");
        bl_rw_word(w, r->container);
    }
    if (r->follow)
        bl_rw_lit(w, "-f");
    if (r->tail_lines >= 0) {
        snprintf(n, sizeof(n), "--tail=%ld", r->tail_lines);
        bl_rw_lit(w, n);
    }
    if (r->previous)
        bl_rw_lit(w, "-p");
}

static void bl_render_portforward(bl_rw_t *w, const bl_kreq_t *r)
{
    char n[16];
    bl_rw_lit(w, "port-forward");
    bl_render_obj(w, r, 1, 1);
    bl_render_ns(w, r, 0);
    for (size_t i = 0; i < r->nports && i < BL_KREQ_MAX_PORTS; i++) {
        snprintf(n, sizeof(n), "%d", r->ports[i]);
        bl_rw_lit(w, n);
    }
}

static void bl_render_scale(bl_rw_t *w, const bl_kreq_t *r)
{
    char n[32];
    bl_rw_lit(w, "scale");
    bl_render_obj(w, r, 1, 1);
    if (r->replicas >= 0) {
        snprintf(n, sizeof(n), "--replicas=%ld", r->replicas);
        bl_rw_lit(w, n);
    }
    bl_render_ns(w, r, 0);
}

/* metrics.k8s.io is what `kubectl top` reads. */
static void bl_render_top(bl_rw_t *w, const bl_kreq_t *r)
{
    bl_rw_lit(w, bl_streq(r->resource, "pods") ? "top pod" : "top node");
    if (r->name[0] != '\0')
        bl_render_pod(w, r);
    bl_render_ns(w, r, r->name[0] == '\0');
}

/* Paths kubectl can only reach with --raw: proxies, non-resource URLs,
 * methods the resolver has no verb for. */
static void bl_render_raw(bl_rw_t *w, const bl_kreq_t *r)
{
    static const char *const map[][2] = {
        { "GET", "get" }, { "HEAD", "get" }, { "POST", "create" },
        { "PUT", "replace" }, { "DELETE", "delete" },
    };
    const char *cmd = NULL;
    for (size_t i = 0; i < BL_ARRAY_LEN(map) && cmd == NULL; i++)
        if (bl_streq(r->method, map[i][0]))
            cmd = map[i][1];
    if (cmd != NULL) {
        bl_rw_lit(w, cmd);
    } else {
        char m[sizeof(r->method)];
        size_t n = strlen(r->method);
        for (size_t i = 0; i <= n; i++)
            m[i] = (char)(r->method[i] >= 'A' && r->method[i] <= 'Z' ? r->method[i] + 32
                                                                     : r->method[i]);
        bl_rw_word(w, m);
    }
    bl_rw_lit(w, "--raw");
    bl_rw_word(w, r->path);
}

/* The CRUD verbs ------------------------------------------------------------ */

/* get, list, watch: `kubectl get`. A list narrowed to one name by
 * fieldSelector (what `kubectl get pod x --watch` sends) shows that name. */
static void bl_render_get(bl_rw_t *w, const bl_kreq_t *r)
{
    int collection = !bl_streq(r->verb, "get");
    bl_rw_lit(w, "get");
    bl_render_obj(w, r, r->name[0] != '\0', 1);
    bl_render_ns(w, r, collection && r->name[0] == '\0');
    bl_render_sub(w, r);
    if (collection)
        bl_render_selectors(w, r);
    if (bl_streq(r->verb, "watch"))
        bl_rw_lit(w, "--watch");
}

static void bl_render_patch(bl_rw_t *w, const bl_kreq_t *r, bl_str_t kcmd)
{
    int main_res = r->subresource[0] == '\0';
    if (bl_streq(r->patch_type, "apply")) {
        bl_rw_lit(w, "apply --server-side");
    } else if (main_res && r->body_restart && bl_kcmd_is(kcmd, "kubectl rollout restart")) {
        /* trusted only because the body was checked to be that patch alone */
        bl_rw_lit(w, "rollout restart");
    } else if (bl_kcmd_is(kcmd, "kubectl apply")) {
        bl_rw_lit(w, "apply");
    } else {
        bl_rw_lit(w, "patch");
        bl_render_obj(w, r, 1, 1);
        bl_render_ns(w, r, 0);
        bl_render_sub(w, r);
        if (bl_streq(r->patch_type, "merge") || bl_streq(r->patch_type, "json")) {
            bl_rw_lit(w, bl_streq(r->patch_type, "merge") ? "--type=merge" : "--type=json");
        }
        return;
    }
    bl_render_obj(w, r, 1, 1);
    bl_render_ns(w, r, 0);
    bl_render_sub(w, r);
    if (bl_streq(r->patch_type, "apply") && r->force)
        bl_rw_lit(w, "--force-conflicts");
}

/* create, update (replace), delete of one object. */
static void bl_render_write(bl_rw_t *w, const bl_kreq_t *r, bl_str_t kcmd)
{
    if (bl_streq(r->verb, "create"))
        bl_rw_lit(w, bl_kcmd_is(kcmd, "kubectl apply") ? "apply" : "create");
    else
        bl_rw_lit(w, bl_streq(r->verb, "update") ? "replace" : "delete");
    bl_render_obj(w, r, 1, 1);
    bl_render_ns(w, r, 0);
    bl_render_sub(w, r);
}

static void bl_render_deletecollection(bl_rw_t *w, const bl_kreq_t *r)
{
    bl_rw_lit(w, "delete");
    bl_render_obj(w, r, 0, 0);
    bl_render_ns(w, r, 1);
    bl_render_selectors(w, r);
    if (r->label_selector[0] == '\0' && r->field_selector[0] == '\0')
        bl_rw_lit(w, "--all");
}

/* Dispatch ------------------------------------------------------------------ */

/* Subresources and groups that have a kubectl command of their own.
 * Returns 1 if it rendered the request. */
static int bl_render_special(bl_rw_t *w, const bl_kreq_t *r)
{
    const char *sub = r->subresource, *verb = r->verb;
    int pod = r->api_group[0] == '\0' && bl_streq(r->resource, "pods");
    int write = bl_streq(verb, "patch") || bl_streq(verb, "update");
    if (pod && (bl_streq(sub, "exec") || bl_streq(sub, "attach")))
        bl_render_exec(w, r, bl_streq(sub, "attach"));
    else if (pod && bl_streq(sub, "log") && bl_streq(verb, "get"))
        bl_render_logs(w, r);
    else if (pod && bl_streq(sub, "portforward"))
        bl_render_portforward(w, r);
    else if (pod && bl_streq(sub, "ephemeralcontainers") && write) {
        bl_rw_lit(w, "debug");
        bl_render_pod(w, r);
        bl_render_ns(w, r, 0);
    } else if (bl_streq(sub, "proxy") || bl_streq(verb, "proxy") || verb[0] == '\0')
        bl_render_raw(w, r);
    else if (bl_streq(r->api_group, "metrics.k8s.io") && sub[0] == '\0' &&
             (bl_streq(r->resource, "pods") || bl_streq(r->resource, "nodes")) &&
             (bl_streq(verb, "get") || bl_streq(verb, "list")))
        bl_render_top(w, r);
    else if ((bl_streq(sub, "scale") && write) ||
             (sub[0] == '\0' && bl_streq(verb, "patch") && r->replicas >= 0))
        bl_render_scale(w, r);
    else if (r->api_group[0] == '\0' && bl_streq(r->resource, "serviceaccounts") &&
             bl_streq(sub, "token") && bl_streq(verb, "create")) {
        bl_rw_lit(w, "create token");
        bl_rw_word(w, r->name);
        bl_render_ns(w, r, 0);
    } else
        return 0;
    return 1;
}

static void bl_render_resource(bl_rw_t *w, const bl_kreq_t *r, bl_str_t kcmd)
{
    if (bl_render_special(w, r))
        return;
    if (bl_streq(r->verb, "get") || bl_streq(r->verb, "list") || bl_streq(r->verb, "watch"))
        bl_render_get(w, r);
    else if (bl_streq(r->verb, "patch"))
        bl_render_patch(w, r, kcmd);
    else if (bl_streq(r->verb, "deletecollection"))
        bl_render_deletecollection(w, r);
    else if (bl_streq(r->verb, "create") || bl_streq(r->verb, "update") ||
             bl_streq(r->verb, "delete"))
        bl_render_write(w, r, kcmd);
    else
        bl_render_raw(w, r);
}

int bl_kreq_render(const bl_kreq_t *r, bl_str_t kubectl_command, bl_buf_t *out)
{
    size_t mark = bl_buf_size(out);
    bl_rw_t w = { out, 0 };
    bl_rw_raw(&w, "kubectl", 7);
    if (r->is_resource)
        bl_render_resource(&w, r, kubectl_command);
    else
        bl_render_raw(&w, r);
    if (r->dry_run[0] != '\0' && r->is_resource && !bl_streq(r->verb, "get") &&
        !bl_streq(r->verb, "list") && !bl_streq(r->verb, "watch"))
        bl_rw_lit(&w, "--dry-run=server");
    if (r->truncated || r->argv_truncated)
        bl_rw_lit(&w, "# truncated");
    if (w.err) {
        out->len = out->off + mark;   /* leave no half-written command behind */
        return BL_ERROR;
    }
    return BL_OK;
}

/* JSON ------------------------------------------------------------------------ */

/* Appends ,"key": before a member (no comma before the first). */
static void bl_jw_key(bl_rw_t *w, int *first, const char *key)
{
    if (!*first)
        bl_rw_raw(w, ",", 1);
    *first = 0;
    bl_rw_raw(w, "\"", 1);
    bl_rw_raw(w, key, strlen(key));
    bl_rw_raw(w, "\":", 2);
}

static void bl_jw_strval(bl_rw_t *w, const char *v)
{
    if (!w->err && bl_buf_json_str(w->out, v, strlen(v)) != BL_OK)
        w->err = 1;
}

/* "key":"value", omitted when value is empty. */
static void bl_jw_str(bl_rw_t *w, int *first, const char *key, const char *v)
{
    if (v[0] == '\0')
        return;
    bl_jw_key(w, first, key);
    bl_jw_strval(w, v);
}

/* "key":true, omitted when false. */
static void bl_jw_true(bl_rw_t *w, int *first, const char *key, int v)
{
    if (!v)
        return;
    bl_jw_key(w, first, key);
    bl_rw_raw(w, "true", 4);
}

/* "key":n, omitted when negative (unknown). */
static void bl_jw_num(bl_rw_t *w, int *first, const char *key, long v)
{
    char n[24];
    if (v < 0)
        return;
    bl_jw_key(w, first, key);
    bl_rw_raw(w, n, (size_t)snprintf(n, sizeof(n), "%ld", v));
}

/* "key":[...] of the exec command words, omitted when there are none. */
static void bl_jw_argv(bl_rw_t *w, int *first, const bl_kreq_t *r)
{
    if (r->argc == 0)
        return;
    bl_jw_key(w, first, "command");
    for (size_t i = 0; i < r->argc; i++) {
        bl_rw_raw(w, i ? "," : "[", 1);
        bl_jw_strval(w, bl_kreq_arg(r, i));
    }
    bl_rw_raw(w, "]", 1);
}

/* "ports":[...], omitted when there are none. */
static void bl_jw_ports(bl_rw_t *w, int *first, const bl_kreq_t *r)
{
    char n[16];
    if (r->nports == 0)
        return;
    bl_jw_key(w, first, "ports");
    for (size_t i = 0; i < r->nports && i < BL_KREQ_MAX_PORTS; i++) {
        bl_rw_raw(w, i ? "," : "[", 1);
        bl_rw_raw(w, n, (size_t)snprintf(n, sizeof(n), "%d", r->ports[i]));
    }
    bl_rw_raw(w, "]", 1);
}

int bl_kreq_json(const bl_kreq_t *r, bl_buf_t *out)
{
    /* Members in byte order of their keys, as RFC 8785 (the audit ledger's
     * canonical form) wants them: keep this list sorted. */
    size_t mark = bl_buf_size(out);
    bl_rw_t w = { out, 0 };
    int first = 1;
    int show_path = !r->is_resource || bl_streq(r->subresource, "proxy") || bl_streq(r->verb, "proxy");
    bl_jw_str(&w, &first, "apiGroup", r->api_group);
    bl_jw_str(&w, &first, "apiVersion", r->api_version);
    bl_jw_argv(&w, &first, r);
    bl_jw_true(&w, &first, "commandTruncated", r->argv_truncated);
    bl_jw_str(&w, &first, "container", r->container);
    bl_jw_true(&w, &first, "discovery", r->is_discovery);
    bl_jw_str(&w, &first, "dryRun", r->dry_run);
    bl_jw_str(&w, &first, "fieldManager", r->field_manager);
    bl_jw_str(&w, &first, "fieldSelector", r->field_selector);
    bl_jw_true(&w, &first, "follow", r->follow);
    bl_jw_true(&w, &first, "force", r->force);
    bl_jw_str(&w, &first, "kind", r->body_kind);
    bl_jw_str(&w, &first, "labelSelector", r->label_selector);
    bl_jw_str(&w, &first, "name", r->name);
    bl_jw_str(&w, &first, "namespace", r->namespace_);
    bl_jw_str(&w, &first, "patchType", r->patch_type);
    if (show_path)
        bl_jw_str(&w, &first, "path", r->path);
    bl_jw_ports(&w, &first, r);
    bl_jw_true(&w, &first, "previous", r->previous);
    bl_jw_num(&w, &first, "replicas", r->replicas);
    bl_jw_str(&w, &first, "resource", r->resource);
    bl_jw_true(&w, &first, "stderr", r->stderr_);
    bl_jw_true(&w, &first, "stdin", r->stdin_);
    bl_jw_true(&w, &first, "stdout", r->stdout_);
    bl_jw_str(&w, &first, "subresource", r->subresource);
    bl_jw_num(&w, &first, "tailLines", r->tail_lines);
    bl_jw_true(&w, &first, "truncated", r->truncated);
    bl_jw_true(&w, &first, "tty", r->tty);
    bl_jw_str(&w, &first, "verb", r->verb);
    if (w.err) {
        out->len = out->off + mark;
        return BL_ERROR;
    }
    return BL_OK;
}
