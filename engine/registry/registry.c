/* registry.c - registry v2 API client for one host (see registry.h).
 *
 * A call moves through: wait for a slot -> send -> (401: get a token, send
 * again) -> (transient failure: release the slot, back off, send again,
 * resuming the body where it broke) -> done. Each call owns one uv_timer
 * for its backoff; the call is freed in that timer's close callback, after
 * the consumer's on_done has returned. */
#include "engine/registry/registry.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "engine/registry/auth.h"
#include "sched/budget.h"

/* A redirect target (a CDN) that refuses a signed URL (expired, or not yet
 * valid there) is left behind and the registry asked for a fresh redirect
 * this many times before the call fails. */
#define CDN_REFRESHES 3

typedef struct token_entry {
    char *scope;
    char *token;
    uint64_t expires_ms; /* uv_now() time */
    uint64_t margin_ms;  /* taken as expired this long before expires_ms */
} token_entry;

typedef struct reg_call reg_call;

typedef struct token_fetch {
    char *scope; /* cache key */
    reg_call **waiters;
    int n_waiters;
    char *body;
    size_t body_len;
    long status;
    struct token_fetch *next;
} token_fetch;

struct oc_registry {
    oc_engine *e;
    char *host;     /* the registry as references name it */
    char *endpoint; /* the host[:port] contacted (config "endpoint", else host) */
    char *base_url;
    const char *ca_file;
    char *user;
    char *pass;
    int basic_mode;       /* registry asked for Basic: send it on every request */
    char *bearer_realm;   /* from the first Bearer challenge: later scopes get */
    char *bearer_service; /* their token before the request, saving a 401 */
    /* Until one answer told us how this registry authenticates, only one
     * call (the probe) goes out; the others wait at the gate, so a burst of
     * calls costs one 401, not one each. */
    int auth_known;
    reg_call *probe;
    reg_call **gate;
    size_t n_gate;
    token_entry *tokens;
    int n_tokens;
    token_fetch *fetching;
    reg_call *backing_off; /* calls waiting for a retry, for oc_registry_interrupt */
    oc_budget *budget;     /* its rate limit, from the first answer that spoke of one */
    char rl_detail[256];   /* what its last 429 said */
    int no_head;           /* HEAD of a manifest refused (405/404) where GET works */
};

struct reg_call {
    oc_registry *r;
    char *repo;
    char *url;
    char *scope; /* "repository:<repo>:pull", or the caller's */
    int own_scope;
    char *method;
    char *accept;
    oc_reg_call_opts opts;
    oc_reg_consumer consumer;
    oc_slot_wait slot;
    uv_timer_t timer;
    int attempt;       /* sends that counted against the retry budget */
    int auth_tries;    /* tokens fetched for this call since a send was let in */
    char *fresh_token; /* fetched for this call: its next send uses it */
    oc_reg_info info;
    oc_http_transfer *transfer;            /* the send in flight, or NULL */
    reg_call *backoff_prev, *backoff_next; /* in r->backing_off while its timer runs */
    int in_backoff;
    int counted;       /* the registry counts it against its rate limit (GET of a manifest) */
    int head_manifest; /* HEAD of a manifest */
    oc_budget_wait bwait;
    int budget_granted; /* this send went with a grant of r->budget, not yet answered */
    int cdn_refreshes;  /* fresh redirects asked for after the redirect target refused */
    /* uploads: the body and its headers (opts' pointers are the caller's) */
    oc_http_body body;
    char *content_type, *content_range;
    /* per send */
    char *h_content_type, *h_digest, *h_content_range, *h_www_auth, *h_retry_after, *h_link;
    char *h_location, *h_range, *h_oci_subject;
    int64_t h_content_length;
    long h_rl_limit, h_rl_remaining, h_rl_window; /* RateLimit-Limit/-Remaining, -1 unsaid */
    uint64_t requested_from;
    int begun;
    int consumer_failed;
    uint64_t consumed; /* entity bytes the consumer holds */
    char errbody[2048];
    size_t errbody_len;
    oc_error err;
};

static void call_attempt(reg_call *c);
static void call_finish(reg_call *c, const oc_error *err);
static void call_interrupted(reg_call *c);
static int budget_settle(reg_call *c, const oc_http_result *res);

/* ---- small helpers ---- */

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = xstrdup(v);
}

void oc_reg_info_free(oc_reg_info *info)
{
    free(info->content_type);
    free(info->docker_content_digest);
    free(info->link);
    free(info->location);
    free(info->range);
    free(info->oci_subject);
    info->content_type = info->docker_content_digest = info->link = NULL;
    info->location = info->range = info->oci_subject = NULL;
}

const char *oc_registry_host(const oc_registry *r)
{
    return r->host;
}

oc_engine *oc_registry_engine(const oc_registry *r)
{
    return r->e;
}

/* "CODE: message" from a registry's JSON error body, or "". */
static void describe_error_body(const char *body, size_t len, char *out, size_t outsz)
{
    out[0] = '\0';
    if (len == 0)
        return;
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *errors = root ? json_object_get(root, "errors") : NULL;
    json_t *first = json_is_array(errors) ? json_array_get(errors, 0) : NULL;
    const char *code = first ? json_string_value(json_object_get(first, "code")) : NULL;
    const char *msg = first ? json_string_value(json_object_get(first, "message")) : NULL;
    if (code || msg)
        snprintf(out, outsz, " (%s%s%s)", code ? code : "", code && msg ? ": " : "",
                 msg ? msg : "");
    json_decref(root);
}

/* ---- registry ---- */

oc_registry *oc_registry_new(oc_engine *e, const char *host, oc_error *err)
{
    oc_registry *r = calloc(1, sizeof *r);
    if (!r) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    r->e = e;
    const oc_registry_config *rc = oc_config_registry(e->opts.config, host);
    r->host = strdup(host);
    r->endpoint = strdup(rc && rc->endpoint ? rc->endpoint : host);
    int insecure = rc && rc->insecure >= 0 ? rc->insecure : e->opts.insecure;
    r->ca_file = rc && rc->ca_cert ? rc->ca_cert : e->opts.ca_file;
    if (!r->host || !r->endpoint ||
        asprintf(&r->base_url, "%s://%s", insecure ? "http" : "https", r->endpoint) < 0) {
        r->base_url = NULL;
        oc_registry_free(r);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    if (rc && rc->concurrency)
        oc_limiter_set_key_max(e->limiter, r->host, rc->concurrency);
    if (rc && rc->requests_per_second > 0 &&
        oc_limiter_set_key_rate(e->limiter, e->loop, r->host, rc->requests_per_second) != 0) {
        oc_registry_free(r);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    const char *user = rc && rc->username ? rc->username : e->opts.username;
    const char *pass = rc && rc->username ? rc->password : e->opts.password;
    if (user) {
        r->user = strdup(user);
        r->pass = strdup(pass ? pass : "");
    } else {
        oc_error cfg_err;
        oc_error_clear(&cfg_err);
        int found = oc_auth_docker_config_lookup(r->endpoint, &r->user, &r->pass, &cfg_err);
        if (found == 0 && strcmp(r->endpoint, host) != 0)
            found = oc_auth_docker_config_lookup(host, &r->user, &r->pass, &cfg_err);
        if (found < 0) {
            oc_registry_free(r);
            if (err)
                *err = cfg_err;
            return NULL;
        }
    }
    return r;
}

void oc_registry_close(oc_registry *r)
{
    if (r && r->budget) {
        oc_budget_close(r->budget);
        r->budget = NULL;
    }
}

int oc_registry_head_refused(const oc_registry *r)
{
    return r->no_head;
}

void oc_registry_set_head_refused(oc_registry *r, long status)
{
    if (!r->no_head)
        oc_engine_log(r->e,
                      "%s answered HEAD of a manifest with HTTP %ld where GET works: asking "
                      "it with GET from now on",
                      r->host, status);
    r->no_head = 1;
}

void oc_registry_free(oc_registry *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_tokens; i++) {
        free(r->tokens[i].scope);
        free(r->tokens[i].token);
    }
    free(r->tokens);
    free(r->gate);
    free(r->bearer_realm);
    free(r->bearer_service);
    free(r->host);
    free(r->endpoint);
    free(r->base_url);
    free(r->user);
    free(r->pass);
    free(r);
}

static token_entry *token_lookup(oc_registry *r, const char *scope)
{
    for (int i = 0; i < r->n_tokens; i++)
        if (strcmp(r->tokens[i].scope, scope) == 0)
            return &r->tokens[i];
    return NULL;
}

static const char *token_valid(oc_registry *r, const char *scope)
{
    token_entry *t = token_lookup(r, scope);
    if (!t || !t->token)
        return NULL;
    if (uv_now(r->e->loop) + t->margin_ms >= t->expires_ms)
        return NULL;
    return t->token;
}

static void token_store(oc_registry *r, const char *scope, const char *token, int expires_in)
{
    token_entry *t = token_lookup(r, scope);
    if (!t) {
        token_entry *grown = realloc(r->tokens, sizeof *grown * (size_t)(r->n_tokens + 1));
        if (!grown)
            return;
        r->tokens = grown;
        t = &r->tokens[r->n_tokens];
        t->scope = strdup(scope);
        t->token = NULL;
        if (!t->scope)
            return;
        r->n_tokens++;
    }
    set_str(&t->token, token);
    /* taken as expired a little before it is: a quarter of its lifetime,
     * at most 5 s (a 300 s token is renewed 5 s early, a 4 s one 1 s
     * early); the calls that asked for it use it once in any case */
    uint64_t life = (uint64_t)expires_in * 1000;
    t->expires_ms = uv_now(r->e->loop) + life;
    t->margin_ms = life / 4 < 5000 ? life / 4 : 5000;
}

static void token_forget(oc_registry *r, const char *scope)
{
    token_entry *t = token_lookup(r, scope);
    if (t) {
        free(t->token);
        t->token = NULL;
    }
}

/* ---- token fetch (bearer flow) ---- */

static void token_fetch_free(token_fetch *f)
{
    free(f->scope);
    free(f->waiters);
    free(f->body);
    free(f);
}

static void token_on_header(void *opaque, long status, const char *name, const char *value)
{
    (void)opaque;
    (void)status;
    (void)name;
    (void)value;
}

static int token_on_data(void *opaque, long status, const char *data, size_t len, oc_error *err)
{
    token_fetch *f = opaque;
    f->status = status;
    if (f->body_len + len > 1024 * 1024) {
        oc_error_set(err, OC_E_FORMAT, "token response larger than 1 MiB");
        return OC_HTTP_DATA_ABORT;
    }
    char *grown = realloc(f->body, f->body_len + len + 1);
    if (!grown) {
        oc_error_set(err, OC_E_NOMEM, "out of memory reading a token");
        return OC_HTTP_DATA_ABORT;
    }
    f->body = grown;
    memcpy(f->body + f->body_len, data, len);
    f->body_len += len;
    f->body[f->body_len] = '\0';
    return OC_HTTP_DATA_OK;
}

static void unlink_fetch(oc_registry *r, token_fetch *f)
{
    for (token_fetch **p = &r->fetching; *p; p = &(*p)->next)
        if (*p == f) {
            *p = f->next;
            return;
        }
}

static void call_retry_later(reg_call *c, const oc_error *why);

static void token_on_done(void *opaque, const oc_http_result *res)
{
    token_fetch *f = opaque;
    reg_call *first = f->waiters[0];
    oc_registry *r = first->r;
    unlink_fetch(r, f);
    oc_error err;
    oc_error_clear(&err);
    int transient = 0;
    char *token = NULL;
    int expires_in = 60;
    if (!res->ok) {
        err = *res->err;
        oc_error_prefix(&err, "token service for %s", r->host);
        transient = 1;
    } else if (res->status == 401 || res->status == 403) {
        char detail[512];
        describe_error_body(f->body, f->body_len, detail, sizeof detail);
        oc_error_set(&err, OC_E_AUTH, "token service for %s refused %s (HTTP %ld)%s", r->host,
                     r->user ? "the credentials" : "anonymous access", res->status, detail);
    } else if (res->status != 200) {
        oc_error_set(&err, OC_E_HTTP, "token service for %s answered HTTP %ld", r->host,
                     res->status);
        transient = oc_retry_status_is_transient(res->status);
    } else if (oc_auth_parse_token_response(f->body, f->body_len, &token, &expires_in, &err) != 0) {
        oc_error_prefix(&err, "token service for %s", r->host);
    }
    if (token)
        token_store(r, f->scope, token, expires_in);
    for (int i = 0; i < f->n_waiters; i++) {
        reg_call *c = f->waiters[i];
        if (err.code == OC_OK) {
            set_str(&c->fresh_token, token); /* its next send uses it, however short-lived */
            call_attempt(c);
        } else if (transient)
            call_retry_later(c, &err);
        else
            call_finish(c, &err);
    }
    free(token);
    token_fetch_free(f);
}

/* "&scope=A&scope=B" for the space-separated scopes "A B" (a push with a
 * mount asks for two repositories), each escaped; malloc'd. */
static char *scope_query(const char *scopes)
{
    char *out = calloc(1, 1);
    size_t len = 0;
    for (const char *p = scopes; out && *p;) {
        size_t n = strcspn(p, " ");
        if (n) {
            char *esc = curl_easy_escape(NULL, p, (int)n);
            size_t add = esc ? strlen(esc) + 7 : 0;
            char *grown = esc ? realloc(out, len + add + 1) : NULL;
            if (!grown) {
                curl_free(esc);
                free(out);
                return NULL;
            }
            out = grown;
            snprintf(out + len, add + 1, "&scope=%s", esc);
            len += add;
            curl_free(esc);
        }
        p += n;
        while (*p == ' ')
            p++;
    }
    return out;
}

/* Ask for a token for c's scope; c continues when it arrives. */
static void token_request(reg_call *c, const oc_auth_challenge *ch)
{
    oc_registry *r = c->r;
    for (token_fetch *f = r->fetching; f; f = f->next) {
        if (strcmp(f->scope, c->scope) == 0) {
            reg_call **grown = realloc(f->waiters, sizeof *grown * (size_t)(f->n_waiters + 1));
            if (!grown)
                break;
            f->waiters = grown;
            f->waiters[f->n_waiters++] = c;
            return;
        }
    }
    oc_error err;
    oc_error_clear(&err);
    token_fetch *f = calloc(1, sizeof *f);
    if (!f || !(f->scope = strdup(c->scope)) || !(f->waiters = malloc(sizeof *f->waiters))) {
        if (f)
            token_fetch_free(f);
        oc_error_set(&err, OC_E_NOMEM, "out of memory");
        call_finish(c, &err);
        return;
    }
    f->waiters[f->n_waiters++] = c;

    /* a call with scopes of its own (a push) asks for those and the
     * challenge's: the first answer of a registry may name only pull */
    char *both = NULL;
    if (c->own_scope && ch->scope && strcmp(ch->scope, c->scope) != 0 &&
        asprintf(&both, "%s %s", c->scope, ch->scope) < 0)
        both = NULL;
    const char *scope = both ? both : ch->scope ? ch->scope : c->scope;
    char *esc_scope = scope_query(scope);
    free(both);
    char *esc_service = ch->service ? curl_easy_escape(NULL, ch->service, 0) : NULL;
    size_t n = strlen(ch->realm) + (esc_scope ? strlen(esc_scope) : 0) +
               (esc_service ? strlen(esc_service) : 0) + 32;
    char *url = malloc(n);
    if (url)
        snprintf(url, n, "%s%sservice=%s%s", ch->realm, strchr(ch->realm, '?') ? "&" : "?",
                 esc_service ? esc_service : "", esc_scope ? esc_scope : "");
    free(esc_scope);
    curl_free(esc_service);
    char *basic = r->user ? oc_auth_basic_header(r->user, r->pass) : NULL;
    char *auth_line = NULL;
    if (basic && asprintf(&auth_line, "Authorization: %s", basic) < 0)
        auth_line = NULL;
    free(basic);
    const char *headers[] = {auth_line, NULL};
    oc_http_request req = {
        .url = url,
        .headers = auth_line ? headers : NULL,
        .ca_file = r->ca_file,
        .tls_verify = 1,
        .follow_redirects = 1,
        .stall_seconds = r->e->opts.stall_seconds,
        .on_header = token_on_header,
        .on_data = token_on_data,
        .on_done = token_on_done,
        .opaque = f,
    };
    oc_engine_log(r->e, "token: GET %s%s", url ? url : "?", auth_line ? " (Basic)" : "");
    f->next = r->fetching;
    r->fetching = f;
    oc_http_transfer *t = url ? oc_http_start(r->e->http, &req, &err) : NULL;
    free(url);
    free(auth_line);
    if (!t) {
        unlink_fetch(r, f);
        token_fetch_free(f);
        if (err.code == OC_OK)
            oc_error_set(&err, OC_E_NOMEM, "out of memory");
        call_finish(c, &err);
    }
}

/* ---- one send of a call ---- */

static void call_reset_send(reg_call *c)
{
    free(c->h_content_type);
    free(c->h_digest);
    free(c->h_content_range);
    free(c->h_www_auth);
    free(c->h_retry_after);
    free(c->h_link);
    free(c->h_location);
    free(c->h_range);
    free(c->h_oci_subject);
    c->h_content_type = c->h_digest = c->h_content_range = c->h_www_auth = c->h_retry_after = NULL;
    c->h_link = c->h_location = c->h_range = c->h_oci_subject = NULL;
    c->h_content_length = -1;
    c->h_rl_limit = c->h_rl_remaining = c->h_rl_window = -1;
    c->begun = 0;
    c->consumer_failed = 0;
    c->errbody_len = 0;
    oc_error_clear(&c->err);
}

/* Docker Hub's "RateLimit-Remaining: 76;w=21600" (and -Limit): the count
 * and the window in seconds (-1 when absent). */
static void parse_rate(const char *value, long *n, long *window)
{
    char *end = NULL;
    long v = strtol(value, &end, 10);
    if (end == value || v < 0)
        return;
    *n = v;
    const char *w = strstr(value, "w=");
    if (w && strtol(w + 2, NULL, 10) > 0)
        *window = strtol(w + 2, NULL, 10);
}

static void call_on_header(void *opaque, long status, const char *name, const char *value)
{
    reg_call *c = opaque;
    if (status >= 300 && status < 400)
        return; /* a redirect's headers */
    if (strcmp(name, "content-type") == 0)
        set_str(&c->h_content_type, value);
    else if (strcmp(name, "docker-content-digest") == 0)
        set_str(&c->h_digest, value);
    else if (strcmp(name, "content-range") == 0)
        set_str(&c->h_content_range, value);
    else if (strcmp(name, "www-authenticate") == 0)
        set_str(&c->h_www_auth, value);
    else if (strcmp(name, "retry-after") == 0)
        set_str(&c->h_retry_after, value);
    else if (strcmp(name, "link") == 0)
        set_str(&c->h_link, value);
    else if (strcmp(name, "content-length") == 0)
        c->h_content_length = strtoll(value, NULL, 10);
    else if (strcmp(name, "ratelimit-remaining") == 0)
        parse_rate(value, &c->h_rl_remaining, &c->h_rl_window);
    else if (strcmp(name, "ratelimit-limit") == 0)
        parse_rate(value, &c->h_rl_limit, &c->h_rl_window);
    else if (strcmp(name, "location") == 0)
        set_str(&c->h_location, value);
    else if (strcmp(name, "range") == 0)
        set_str(&c->h_range, value);
    else if (strcmp(name, "oci-subject") == 0)
        set_str(&c->h_oci_subject, value);
}

/* "bytes S-E/T" -> start and total (-1 when '*'). */
static int parse_content_range(const char *v, uint64_t *start, int64_t *total)
{
    unsigned long long s = 0, e = 0;
    char tot[32];
    if (!v || sscanf(v, "bytes %llu-%llu/%31s", &s, &e, tot) != 3 || e < s)
        return -1;
    *start = s;
    *total = strcmp(tot, "*") == 0 ? -1 : strtoll(tot, NULL, 10);
    return 0;
}

static void fill_info_headers(reg_call *c, long status)
{
    c->info.status = status;
    set_str(&c->info.content_type, c->h_content_type);
    set_str(&c->info.docker_content_digest, c->h_digest);
    set_str(&c->info.link, c->h_link);
    c->info.content_length = c->h_content_length;
    set_str(&c->info.location, c->h_location);
    set_str(&c->info.range, c->h_range);
    set_str(&c->info.oci_subject, c->h_oci_subject);
}

static int call_on_data(void *opaque, long status, const char *data, size_t len, oc_error *err)
{
    reg_call *c = opaque;
    if (status < 200 || status >= 300) {
        size_t room = sizeof c->errbody - c->errbody_len;
        size_t take = len < room ? len : room;
        memcpy(c->errbody + c->errbody_len, data, take);
        c->errbody_len += take;
        return OC_HTTP_DATA_OK;
    }
    if (!c->begun) {
        uint64_t offset = 0;
        fill_info_headers(c, status);
        if (status == 206) {
            int64_t total = -1;
            if (parse_content_range(c->h_content_range, &offset, &total) != 0 ||
                offset != c->requested_from) {
                oc_error_set(err, OC_E_NET,
                             "registry answered a Range request from byte %" PRIu64
                             " with Content-Range '%s'",
                             c->requested_from, c->h_content_range ? c->h_content_range : "");
                c->consumed = 0; /* next send starts over */
                return OC_HTTP_DATA_ABORT;
            }
            c->info.content_length = total;
            c->info.resumed = 1;
        } else if (c->h_content_length >= 0) {
            c->info.content_length = c->h_content_length;
        }
        if (c->consumer.on_begin &&
            c->consumer.on_begin(c->consumer.opaque, offset, &c->info, err) != 0) {
            c->consumer_failed = 1;
            return OC_HTTP_DATA_ABORT;
        }
        c->begun = 1;
        c->consumed = offset;
        c->auth_tries = 0; /* let in: a later 401 (an expired token) may fetch again */
    }
    if (c->consumer.on_body) {
        int rc = c->consumer.on_body(c->consumer.opaque, data, len, err);
        if (rc == 1)
            return OC_HTTP_DATA_PAUSE;
        if (rc != 0) {
            c->consumer_failed = 1;
            return OC_HTTP_DATA_ABORT;
        }
    }
    c->consumed += len;
    c->info.bytes_received += len;
    return OC_HTTP_DATA_OK;
}

static void call_free(uv_handle_t *h)
{
    reg_call *c = h->data;
    call_reset_send(c);
    oc_reg_info_free(&c->info);
    free(c->repo);
    free(c->url);
    free(c->scope);
    free(c->method);
    free(c->accept);
    free(c->fresh_token);
    free(c->content_type);
    free(c->content_range);
    free(c);
}

static void call_finish(reg_call *c, const oc_error *err)
{
    if (c->consumer.on_done)
        c->consumer.on_done(c->consumer.opaque, &c->info, err && err->code != OC_OK ? err : NULL);
    uv_close((uv_handle_t *)&c->timer, call_free);
}

static void backoff_unlink(reg_call *c)
{
    if (!c->in_backoff)
        return;
    if (c->backoff_prev)
        c->backoff_prev->backoff_next = c->backoff_next;
    else
        c->r->backing_off = c->backoff_next;
    if (c->backoff_next)
        c->backoff_next->backoff_prev = c->backoff_prev;
    c->backoff_prev = c->backoff_next = NULL;
    c->in_backoff = 0;
}

static void on_backoff_done(uv_timer_t *t)
{
    reg_call *c = t->data;
    backoff_unlink(c);
    call_attempt(c);
}

static void call_interrupted(reg_call *c)
{
    oc_error err;
    oc_error_set(&err, OC_E_CANCELLED, "%s %s: %s", c->method, c->url, c->r->e->interrupted_why);
    call_finish(c, &err);
}

void oc_registry_interrupt(oc_registry *r)
{
    if (r->budget)
        oc_budget_cancel(r->budget, r->e->interrupted_why);
    while (r->backing_off) {
        reg_call *c = r->backing_off;
        backoff_unlink(c);
        uv_timer_stop(&c->timer);
        call_interrupted(c);
    }
}

static void call_retry_later(reg_call *c, const oc_error *why)
{
    if (c->r->e->interrupted) { /* no retry of an interrupted run */
        call_interrupted(c);
        return;
    }
    if (c->attempt >= c->r->e->opts.retry.max_attempts) {
        oc_error err = *why;
        oc_error_prefix(&err, "gave up after %d attempts", c->attempt);
        call_finish(c, &err);
        return;
    }
    uint64_t retry_after = 0;
    if (c->h_retry_after)
        oc_retry_after_parse(c->h_retry_after, time(NULL), &retry_after);
    uint64_t delay =
        oc_retry_delay_ms(&c->r->e->opts.retry, c->attempt + 1, retry_after, &c->r->e->rng);
    oc_engine_log(c->r->e, "retry %s in %" PRIu64 " ms (attempt %d): %s", c->url, delay,
                  c->attempt + 1, why->msg);
    c->backoff_next = c->r->backing_off;
    if (c->backoff_next)
        c->backoff_next->backoff_prev = c;
    c->backoff_prev = NULL;
    c->r->backing_off = c;
    c->in_backoff = 1;
    uv_timer_start(&c->timer, on_backoff_done, delay, 0);
}

static void call_on_401(reg_call *c)
{
    oc_registry *r = c->r;
    oc_error err;
    oc_error_clear(&err);
    char detail[512];
    describe_error_body(c->errbody, c->errbody_len, detail, sizeof detail);
    oc_auth_challenge ch;
    memset(&ch, 0, sizeof ch);
    if (!c->h_www_auth) {
        oc_error_set(&err, OC_E_AUTH, "%s answered 401 without a WWW-Authenticate challenge%s",
                     r->host, detail);
        call_finish(c, &err);
        return;
    }
    if (oc_auth_parse_challenge(&ch, c->h_www_auth, &err) != 0) {
        oc_error_prefix(&err, "%s", r->host);
        call_finish(c, &err);
        return;
    }
    if (ch.scheme == OC_AUTH_BEARER && c->auth_tries < 2) {
        c->auth_tries++;
        set_str(&r->bearer_realm, ch.realm);
        set_str(&r->bearer_service, ch.service);
        token_forget(r, c->scope);
        token_request(c, &ch);
    } else if (ch.scheme == OC_AUTH_BASIC && r->user && !r->basic_mode) {
        r->basic_mode = 1;
        call_attempt(c);
    } else if (ch.scheme == OC_AUTH_BASIC && !r->user) {
        oc_error_set(&err, OC_E_AUTH,
                     "%s requires credentials (Basic auth); pass --username/--password or "
                     "add them to ~/.docker/config.json%s",
                     r->host, detail);
        call_finish(c, &err);
    } else {
        oc_error_set(&err, OC_E_AUTH, "authentication refused by %s for %s (HTTP 401)%s", r->host,
                     c->repo, detail);
        call_finish(c, &err);
    }
    oc_auth_challenge_free(&ch);
}

static void call_on_done_inner(reg_call *c, const oc_http_result *res);

/* Let the calls waiting for the first answer go. */
static void gate_release(oc_registry *r)
{
    reg_call **waiting = r->gate;
    size_t n = r->n_gate;
    r->gate = NULL;
    r->n_gate = 0;
    for (size_t i = 0; i < n; i++)
        call_attempt(waiting[i]);
    free(waiting);
}

static void call_on_done(void *opaque, const oc_http_result *res)
{
    reg_call *c = opaque;
    oc_registry *r = c->r;
    int was_probe = r->probe == c;
    if (was_probe) {
        r->probe = NULL;
        r->auth_known = res->ok;
    }
    call_on_done_inner(c, res);
    if (was_probe)
        gate_release(r);
}

/* "host[:port]" of url into out ("?" when there is none). */
static void url_host(const char *url, char *out, size_t cap)
{
    const char *p = url ? strstr(url, "://") : NULL;
    p = p ? p + 3 : url ? url : "?";
    size_t n = strcspn(p, "/?#");
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
}

/* A redirect target's error body, which is not the registry's JSON: S3's
 * and GCS's XML <Code>/<Message>, else its first line. " (...)" or "". */
static void describe_foreign_body(const char *body, size_t len, char *out, size_t cap)
{
    describe_error_body(body, len, out, cap);
    if (out[0] || len == 0)
        return;
    char code[128] = "", msg[256] = "";
    const char *tags[2][2] = {{"<Code>", "</Code>"}, {"<Message>", "</Message>"}};
    char *dst[2] = {code, msg};
    size_t dcap[2] = {sizeof code, sizeof msg};
    for (int i = 0; i < 2; i++) {
        const char *a = memmem(body, len, tags[i][0], strlen(tags[i][0]));
        if (!a)
            continue;
        a += strlen(tags[i][0]);
        const char *b = memmem(a, len - (size_t)(a - body), tags[i][1], strlen(tags[i][1]));
        if (b)
            oc_excerpt(a, (size_t)(b - a), (dcap[i] - 8) / 4, dst[i], dcap[i]);
    }
    if (code[0] || msg[0]) {
        snprintf(out, cap, " (%.120s%s%.240s)", code, code[0] && msg[0] ? ": " : "", msg);
        return;
    }
    size_t line = 0;
    while (line < len && body[line] != '\r' && body[line] != '\n')
        line++;
    char text[512];
    oc_excerpt(body, line, 100, text, sizeof text);
    snprintf(out, cap, " (%.400s)", text);
}

/* Report this send's answer to the registry's rate-limit budget (created
 * at the first answer that speaks of one). res NULL: no answer. 1 when the
 * registry refused the request for its rate limit (429 with nothing left,
 * or TOOMANYREQUESTS). */
static int budget_settle(reg_call *c, const oc_http_result *res)
{
    oc_registry *r = c->r;
    int granted = c->budget_granted;
    c->budget_granted = 0;
    int said = res && res->ok && c->h_rl_remaining >= 0;
    /* a 429 is the pull limit when the registry speaks of one (Docker Hub:
     * RateLimit-Remaining 0, or TOOMANYREQUESTS from a registry whose
     * answers carried the headers); any other 429 (TOOMANYREQUESTS is the
     * spec's code for every 429) is a transient answer, retried with
     * backoff and Retry-After */
    int limited = res && res->ok && res->status == 429 &&
                  (c->h_rl_remaining == 0 ||
                   (r->budget && memmem(c->errbody, c->errbody_len, "TOOMANYREQUESTS", 15)));
    if (!r->budget && (said || limited)) {
        uint64_t bound = r->e->opts.rate_wait_ms ? r->e->opts.rate_wait_ms : 60000;
        r->budget = oc_budget_new(r->e->loop, bound);
    }
    if (!r->budget)
        return 0;
    if (limited) {
        uint64_t retry_after = 0;
        if (c->h_retry_after)
            oc_retry_after_parse(c->h_retry_after, time(NULL), &retry_after);
        describe_error_body(c->errbody, c->errbody_len, r->rl_detail, sizeof r->rl_detail);
        oc_engine_log(r->e, "%s: rate limit reached (HTTP 429)%s", r->host, r->rl_detail);
        oc_budget_refused(r->budget, granted, retry_after, c->h_rl_limit, c->h_rl_window);
        return 1;
    }
    if (said)
        oc_engine_log(r->e, "%s: RateLimit-Remaining %ld (window %ld s)", r->host,
                      c->h_rl_remaining, c->h_rl_window);
    oc_budget_answer(r->budget, granted, said ? c->h_rl_limit : -1, said ? c->h_rl_remaining : -1,
                     said ? c->h_rl_window : -1);
    return 0;
}

static void call_on_done_inner(reg_call *c, const oc_http_result *res)
{
    oc_registry *r = c->r;
    c->transfer = NULL;
    if (!c->opts.no_slot)
        oc_limiter_release(r->e->limiter, &c->slot);
    c->info.http_version = res->http_version;
    c->info.local_port = res->local_port;
    oc_engine_log(r->e,
                  "done %s %s: HTTP/%ld status %ld, %" PRIu64
                  " bytes, local port %ld, %ld new connection(s)%s%s",
                  c->method, c->url, res->http_version, res->status, res->body_bytes,
                  res->local_port, res->num_connects, res->redirects ? ", after a redirect" : "",
                  "");
    oc_error err;
    oc_error_clear(&err);
    char detail[512];
    int limited = budget_settle(c, res);

    if (!res->ok) {
        err = *res->err;
        if (c->consumer_failed) {
            call_finish(c, &err); /* the consumer refused the bytes: no retry here */
            return;
        }
        oc_error_prefix(&err, "%s %s", c->method, c->url);
        if (c->opts.no_retry)
            call_finish(c, &err); /* the caller asks what the registry kept */
        else
            call_retry_later(c, &err);
        return;
    }
    if (!c->begun)
        fill_info_headers(c, res->status);
    if (res->status != 401)
        c->auth_tries = 0; /* let in: a later 401 (an expired token) may fetch again */
    if (res->status >= 200 && res->status < 300) {
        if (!c->begun && c->consumer.on_begin && strcmp(c->method, "HEAD") != 0 &&
            c->consumer.on_begin(c->consumer.opaque, 0, &c->info, &err) != 0) {
            call_finish(c, &err); /* an empty body */
            return;
        }
        call_finish(c, NULL);
        return;
    }
    if (limited && c->counted) {
        /* the registry's budget is spent: wait for it, or fail, there */
        c->attempt--;
        call_attempt(c);
        return;
    }
    if (res->redirects > 0) {
        /* the answer is the redirect target's (a CDN behind a signed URL),
         * not the registry's */
        char host[256];
        url_host(res->final_url, host, sizeof host);
        describe_foreign_body(c->errbody, c->errbody_len, detail, sizeof detail);
        int refused = res->status == 400 || res->status == 401 || res->status == 403 ||
                      res->status == 404 || res->status == 410;
        if (refused && c->cdn_refreshes < CDN_REFRESHES && !r->e->interrupted) {
            c->cdn_refreshes++;
            oc_engine_log(r->e,
                          "%s %s: redirected to %s, which answered HTTP %ld%s; asking %s "
                          "for a fresh redirect",
                          c->method, c->url, host, res->status, detail, r->host);
            c->attempt--; /* not a failure of the registry's */
            call_attempt(c);
            return;
        }
        oc_error_set(&err, OC_E_HTTP, "%s %s: redirected to %s, which answered HTTP %ld%s%s",
                     c->method, c->url, host, res->status, detail,
                     refused ? " (after fresh redirects from the registry)" : "");
        if (!refused && oc_retry_status_is_transient(res->status))
            call_retry_later(c, &err);
        else
            call_finish(c, &err);
        return;
    }
    describe_error_body(c->errbody, c->errbody_len, detail, sizeof detail);
    if (res->status == 401) {
        call_on_401(c);
        return;
    }
    if (res->status == 404) {
        oc_error_set(&err, OC_E_NOTFOUND, "%s: not found (HTTP 404)%s", c->url, detail);
        call_finish(c, &err);
        return;
    }
    if (res->status == 403) {
        oc_error_set(&err, OC_E_AUTH, "%s: access denied (HTTP 403)%s", c->url, detail);
        call_finish(c, &err);
        return;
    }
    oc_error_set(&err, OC_E_HTTP, "%s %s: HTTP %ld%s", c->method, c->url, res->status, detail);
    if (oc_retry_status_is_transient(res->status) && !c->opts.no_retry)
        call_retry_later(c, &err);
    else
        call_finish(c, &err);
}

/* "scheme://host:port" of url, lower case, with the scheme's default port
 * written out; "" when url has no scheme. */
static void origin_of(const char *url, char *out, size_t size)
{
    out[0] = '\0';
    const char *sep = strstr(url, "://");
    if (!sep)
        return;
    size_t slen = (size_t)(sep - url);
    const char *auth = sep + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *at = memchr(auth, '@', alen); /* no userinfo */
    if (at) {
        alen -= (size_t)(at + 1 - auth);
        auth = at + 1;
    }
    int has_port = alen && memchr(auth, ':', alen) && auth[alen - 1] != ']';
    const char *port =
        !has_port ? (slen == 5 && strncasecmp(url, "https", 5) == 0 ? ":443" : ":80") : "";
    snprintf(out, size, "%.*s://%.*s%s", (int)slen, url, (int)alen, auth, port);
    for (char *p = out; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
}

/* Is url on this registry (scheme, host and port of its base URL)? */
static int same_origin(const oc_registry *r, const char *url)
{
    char a[512], b[512];
    origin_of(url, a, sizeof a);
    origin_of(r->base_url, b, sizeof b);
    return a[0] && strcmp(a, b) == 0;
}

static void call_on_sent(void *opaque, size_t n)
{
    reg_call *c = opaque;
    c->opts.on_sent(c->consumer.opaque, n);
}

static void call_send(oc_slot_wait *w)
{
    reg_call *c = w->opaque;
    oc_registry *r = c->r;
    if (r->no_head && c->head_manifest) {
        /* queued before the registry was found not to do HEAD: answer as it
         * would, without asking (the caller falls back to GET) */
        oc_limiter_release(r->e->limiter, &c->slot);
        oc_error err;
        c->info.status = 405;
        oc_error_set(&err, OC_E_HTTP, "HEAD %s: HEAD of manifests refused by %s", c->url, r->host);
        call_finish(c, &err);
        return;
    }
    call_reset_send(c);
    c->attempt++;
    c->info.attempts = c->attempt;
    if (c->opts.resumable && c->consumed > 0)
        c->requested_from = c->consumed;
    else if (c->attempt == 1)
        c->requested_from = c->opts.resume_from;
    else
        c->requested_from = 0;

    char *accept_line = NULL, *auth_line = NULL, *type_line = NULL, *range_line = NULL;
    const char *headers[5] = {NULL, NULL, NULL, NULL, NULL};
    int nh = 0;
    if (c->accept && asprintf(&accept_line, "Accept: %s", c->accept) >= 0)
        headers[nh++] = accept_line;
    if (c->content_type && asprintf(&type_line, "Content-Type: %s", c->content_type) >= 0)
        headers[nh++] = type_line;
    if (c->content_range && asprintf(&range_line, "Content-Range: %s", c->content_range) >= 0)
        headers[nh++] = range_line;
    const char *token = c->fresh_token ? c->fresh_token : token_valid(r, c->scope);
    if (!same_origin(r, c->url)) {
        /* an upload URL on another host never gets our credentials */
    } else if (token) {
        if (asprintf(&auth_line, "Authorization: Bearer %s", token) < 0)
            auth_line = NULL;
        free(c->fresh_token);
        c->fresh_token = NULL;
    } else if (r->basic_mode && r->user) {
        char *basic = oc_auth_basic_header(r->user, r->pass);
        if (basic && asprintf(&auth_line, "Authorization: %s", basic) < 0)
            auth_line = NULL;
        free(basic);
    }
    if (auth_line)
        headers[nh++] = auth_line;

    oc_http_request req = {
        .method = c->method,
        .url = c->url,
        .headers = headers,
        .ca_file = r->ca_file,
        .tls_verify = 1,
        .follow_redirects = 1,
        .stall_seconds = r->e->opts.stall_seconds,
        .range_from = c->requested_from,
        .on_header = call_on_header,
        .on_data = call_on_data,
        .on_done = call_on_done,
        .opaque = c,
        .body = c->opts.body ? &c->body : NULL,
        .on_sent = c->opts.on_sent ? call_on_sent : NULL,
    };
    oc_engine_log(r->e, "%s %s%s (attempt %d)", c->method, c->url,
                  c->requested_from ? " (resume)" : "", c->attempt);
    oc_error err;
    oc_error_clear(&err);
    oc_http_transfer *t = oc_http_start(r->e->http, &req, &err);
    c->transfer = t;
    free(accept_line);
    free(auth_line);
    free(type_line);
    free(range_line);
    if (!t) {
        if (!c->opts.no_slot)
            oc_limiter_release(r->e->limiter, &c->slot);
        budget_settle(c, NULL);
        call_finish(c, &err);
    }
}

static void slot_acquire(reg_call *c)
{
    if (c->opts.no_slot) { /* it rides on a slot its caller holds */
        call_send(&c->slot);
        return;
    }
    if (oc_limiter_acquire(c->r->e->limiter, c->r->host, &c->slot) != 0) {
        oc_error err;
        oc_error_set(&err, OC_E_NOMEM, "out of memory");
        call_finish(c, &err);
    }
}

/* The registry's rate-limit budget let this send go, or refused it. */
static void on_budget(oc_budget_wait *w, int granted, const char *why)
{
    reg_call *c = w->opaque;
    if (granted) {
        c->budget_granted = 1;
        slot_acquire(c);
        return;
    }
    if (c->r->e->interrupted) {
        call_interrupted(c);
        return;
    }
    oc_error err;
    oc_error_set(&err, OC_E_LIMIT, "%s %s: rate limit reached at %s: %s%s%s", c->method, c->url,
                 c->r->host, why, c->r->rl_detail[0] ? "; it said" : "", c->r->rl_detail);
    call_finish(c, &err);
}

static void call_attempt(reg_call *c)
{
    oc_registry *r = c->r;
    if (!r->auth_known) {
        if (r->probe && r->probe != c) {
            reg_call **grown = realloc(r->gate, sizeof *grown * (r->n_gate + 1));
            if (grown) {
                r->gate = grown;
                r->gate[r->n_gate++] = c;
                return;
            }
        } else {
            r->probe = c;
        }
    }
    if (r->bearer_realm && c->auth_tries == 0 && !c->fresh_token && !token_valid(r, c->scope)) {
        /* the registry wants bearer tokens: get this scope's before asking */
        c->auth_tries++;
        oc_auth_challenge ch = {
            .scheme = OC_AUTH_BEARER, .realm = r->bearer_realm, .service = r->bearer_service};
        token_request(c, &ch);
        return;
    }
    if (c->counted && r->budget && !c->budget_granted) {
        /* a request the registry counts waits for its budget (or is refused) */
        if (!oc_budget_left(r->budget)) {
            char state[256];
            oc_budget_describe(r->budget, state, sizeof state);
            oc_engine_log(r->e, "%s %s waits for its rate limit, or fails: %s", c->method, c->url,
                          state);
        }
        oc_budget_acquire(r->budget, &c->bwait);
        return;
    }
    slot_acquire(c);
}

int oc_registry_call(oc_registry *r, const char *repo, const char *kind, const char *reference,
                     const oc_reg_call_opts *opts, const oc_reg_consumer *consumer, oc_error *err)
{
    reg_call *c = calloc(1, sizeof *c);
    if (!c) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    c->r = r;
    c->repo = strdup(repo);
    c->method = strdup(opts && opts->method ? opts->method : "GET");
    c->accept = opts && opts->accept ? strdup(opts->accept) : NULL;
    if (opts)
        c->opts = *opts;
    c->opts.accept = NULL;
    c->opts.method = NULL;
    c->consumer = *consumer;
    c->h_content_length = -1;
    c->info.content_length = -1;
    c->info.call = c;
    int bad = 0;
    if (opts && opts->url) {
        int absolute =
            strncmp(opts->url, "http://", 7) == 0 || strncmp(opts->url, "https://", 8) == 0;
        if (absolute ? !(c->url = strdup(opts->url))
                     : asprintf(&c->url, "%s%s%s", r->base_url, opts->url[0] == '/' ? "" : "/",
                                opts->url) < 0)
            c->url = NULL;
    } else if (asprintf(&c->url, "%s/v2/%s/%s/%s", r->base_url, repo, kind, reference) < 0) {
        c->url = NULL;
    }
    if (opts && opts->scope ? !(c->scope = strdup(opts->scope))
                            : asprintf(&c->scope, "repository:%s:pull", repo) < 0)
        c->scope = NULL;
    c->own_scope = opts && opts->scope;
    if (opts && opts->body)
        c->body = *opts->body;
    c->opts.body = opts && opts->body ? &c->body : NULL;
    c->opts.url = c->opts.scope = NULL;
    c->opts.content_type = c->opts.content_range = NULL;
    if (opts && opts->content_type && !(c->content_type = strdup(opts->content_type)))
        bad = 1;
    if (opts && opts->content_range && !(c->content_range = strdup(opts->content_range)))
        bad = 1;
    if (bad || !c->repo || !c->method || !c->url || !c->scope) {
        free(c->repo);
        free(c->method);
        free(c->accept);
        free(c->url);
        free(c->scope);
        free(c->content_type);
        free(c->content_range);
        free(c);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    c->slot.granted = call_send;
    c->slot.opaque = c;
    c->counted = strcmp(c->method, "GET") == 0 && strcmp(kind, "manifests") == 0;
    c->head_manifest = strcmp(c->method, "HEAD") == 0 && strcmp(kind, "manifests") == 0;
    c->bwait.done = on_budget;
    c->bwait.opaque = c;
    uv_timer_init(r->e->loop, &c->timer);
    c->timer.data = c;
    if (c->opts.start_after_ms) { /* waits like a retry (an interrupt ends it) */
        c->backoff_next = r->backing_off;
        if (c->backoff_next)
            c->backoff_next->backoff_prev = c;
        r->backing_off = c;
        c->in_backoff = 1;
        uv_timer_start(&c->timer, on_backoff_done, c->opts.start_after_ms, 0);
        return 0;
    }
    call_attempt(c);
    return 0;
}

void oc_reg_call_unpause(oc_reg_call *call)
{
    if (call && call->transfer)
        oc_http_unpause(call->transfer);
}

/* ---- small documents in memory ---- */

typedef struct small_fetch {
    char *buf;
    size_t len;
    size_t max;
    char *what;
    oc_reg_small_done done;
    void *opaque;
} small_fetch;

static int small_begin(void *opaque, uint64_t offset, const oc_reg_info *info, oc_error *err)
{
    small_fetch *s = opaque;
    (void)offset;
    if (info->content_length > (int64_t)s->max) {
        oc_error_set(err, OC_E_LIMIT, "%s is %" PRId64 " bytes, more than the %zu allowed", s->what,
                     info->content_length, s->max);
        return -1;
    }
    s->len = 0;
    return 0;
}

static int small_body(void *opaque, const char *data, size_t len, oc_error *err)
{
    small_fetch *s = opaque;
    if (s->len + len > s->max) {
        oc_error_set(err, OC_E_LIMIT, "%s is larger than the %zu bytes allowed", s->what, s->max);
        return -1;
    }
    char *grown = realloc(s->buf, s->len + len + 1);
    if (!grown) {
        oc_error_set(err, OC_E_NOMEM, "out of memory reading %s", s->what);
        return -1;
    }
    s->buf = grown;
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    s->buf[s->len] = '\0';
    return 0;
}

static void small_done(void *opaque, const oc_reg_info *info, const oc_error *err)
{
    small_fetch *s = opaque;
    s->done(s->opaque, s->buf ? s->buf : "", s->len, info, err);
    free(s->buf);
    free(s->what);
    free(s);
}

int oc_registry_fetch_small(oc_registry *r, const char *repo, const char *kind,
                            const char *reference, const char *accept, size_t max,
                            oc_reg_small_done done, void *opaque, oc_error *err)
{
    small_fetch *s = calloc(1, sizeof *s);
    if (!s || asprintf(&s->what, "%s %s/%s", kind, repo, reference) < 0) {
        free(s);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    s->max = max;
    s->done = done;
    s->opaque = opaque;
    oc_reg_call_opts opts = {.accept = accept};
    oc_reg_consumer consumer = {
        .on_begin = small_begin, .on_body = small_body, .on_done = small_done, .opaque = s};
    if (oc_registry_call(r, repo, kind, reference, &opts, &consumer, err) != 0) {
        free(s->what);
        free(s);
        return -1;
    }
    return 0;
}
