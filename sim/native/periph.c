/*
 * Native peripheral registers for tinymeter's emulator: the MMIO pages of the
 * peripherals whose registers have behaviour (ready flags following enables,
 * clock-switch status, UART status, timers counting estimated cycles, GPIO
 * output marks, boot polls, a free-running cycle counter).
 *
 * Why native: Unicorn serves an mmio_map page through a callback per access.
 * A Python callback costs microseconds, so firmware spinning on a status
 * register (HAL waiting for PLLRDY, a UART TXE loop, a timer-based delay) ran
 * at ~0.3 MIPS.  These C callbacks are registered directly with uc_mmio_map
 * (function pointers passed by Python through ctypes), so a poll costs what
 * Unicorn's I/O path costs and no Python at all.
 *
 * One source of truth: the semantics live here only.  Python
 * (tinymeter.sim.native_periph) compiles the board data (board file,
 * CMSIS-SVD, [[init]] polls, markers, UART layout) into a table of per-word
 * rules and calls tm_pv_read/tm_pv_write for its own unit tests, so tests and
 * emulation run the same code.
 *
 * Model: a device owns n_pages 4 KiB pages of word storage.  Each storage word
 * may carry rules (sorted by word; rule_first is the prefix index):
 *   read:  OR (bits read 1), FOLLOW (status bits read as control bits of
 *          another word, shifted), FORCE (bits read as the awaited value),
 *          CYCLES (a 32-bit free-running counter of estimated cycles),
 *          TIMER (timer registers computed from the cycle count);
 *   write: CLEAR (bits written 1 read back 0: requests done at once), MARK
 *          (a word write of an exact value logs a named event), UART_DATA (the
 *          low byte goes to the notify callback), GPIO (ODR/BSRR/BRR update ODR
 *          and log one event per changed pin), TIMER.
 * Sub-word accesses read the computed word and extract bytes; sub-word writes
 * merge into the stored word first.  Events (cycle, name id, level) go into a
 * growable array Python reads after the run.  The notify callback (Python) is
 * called only for UART bytes and timer register writes (which may move the
 * next interrupt): never on reads.
 *
 * Cycles come from *cycles (fixed point, TM_PV_FRAC_BITS fraction bits): the
 * counting hook's running counter during a run, or the device's own cell.
 */
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TM_PV_ABI_VERSION 2u
#define TM_PV_FRAC_BITS 16u
#define TM_PV_PAGE_WORDS 1024u

enum {
    TM_PV_OR = 1,
    TM_PV_FOLLOW = 2,
    TM_PV_FORCE = 3,
    TM_PV_CYCLES = 4,
    TM_PV_CLEAR = 5,
    TM_PV_MARK = 6,
    TM_PV_UART_DATA = 7,
    TM_PV_GPIO = 8,
    TM_PV_TIMER = 9,
    TM_PV_CYCCNT = 10,     /* DWT_CYCCNT: a = word of DWT_CTRL (CYCCNTENA = bit 0) */
    TM_PV_CYCCNT_CTRL = 11, /* DWT_CTRL: writes start/stop the counter */
    TM_PV_SYST = 12,       /* SysTick register: b = 0 CSR, 1 RVR, 2 CVR, 3 CALIB */
    TM_PV_PYTHON = 13,     /* served by the Python callback (NVIC/SCB: rare accesses) */
};

/* GPIO register kinds (rule b) */
enum { TM_PV_ODR = 0, TM_PV_BSRR = 1, TM_PV_BRR = 2 };
/* STM32 general-purpose timer register offsets (RM0432 39.4) */
enum { TM_CR1 = 0x00, TM_DIER = 0x0C, TM_SR = 0x10, TM_EGR = 0x14, TM_CNT = 0x24,
       TM_PSC = 0x28, TM_ARR = 0x2C };
/* notify kinds */
enum { TM_PV_NOTIFY_UART = 1, TM_PV_NOTIFY_TIMER = 2 };
enum { TM_SYST_CSR = 0, TM_SYST_RVR = 1, TM_SYST_CVR = 2, TM_SYST_CALIB = 3 };
#define TM_SYST_ENABLE 1u
#define TM_SYST_TICKINT 2u
#define TM_SYST_COUNTFLAG (1u << 16)
#define TM_MASK24 0xFFFFFFu

typedef struct tm_pv_rule {
    uint32_t word;  /* device word index the rule belongs to */
    uint32_t kind;
    uint32_t a, b, c;
    int32_t shift;
} tm_pv_rule;

typedef struct tm_pv_timer_spec {
    uint32_t bits;
    uint32_t pad;
    double clock_ratio;
} tm_pv_timer_spec;

typedef struct tm_pv_timer {
    uint64_t top, arr, psc, psc_preload;
    uint64_t base, base_cycle, seen;
    uint32_t cr1, dier, sr, pad;
    double ratio;
} tm_pv_timer;

typedef struct tm_pv_event {
    uint64_t cycle;
    uint32_t name;
    uint32_t level;
} tm_pv_event;

struct tm_pv_dev;
typedef struct tm_pv_page {
    struct tm_pv_dev *dev;
    uint32_t index;
} tm_pv_page;

typedef void (*tm_pv_notify_fn)(void *user, uint32_t kind, uint32_t value);
/* Python access: a word read (is_write 0, returns the value) or write. */
typedef uint32_t (*tm_pv_python_fn)(void *user, uint32_t is_write, uint32_t address,
                                    uint32_t value);

/* SysTick down-counter (ARMv7-M B3.3): the value is computed from the cycle count. */
typedef struct tm_systick {
    uint32_t csr, rvr;
    int64_t start_value, start_cycle; /* counter value and cycle at the last restart */
    uint32_t frozen;                  /* value while disabled */
    uint32_t pad;
    uint64_t reported_zeros;          /* zero crossings reported through COUNTFLAG */
    uint64_t delivered_zeros;         /* zero crossings turned into exceptions */
} tm_systick;

typedef struct tm_pv_dev {
    uint32_t n_pages;
    uint32_t n_rules;
    uint32_t n_timers;
    uint32_t oom;
    tm_pv_page *pages;
    uint32_t *store;
    uint32_t *rule_first; /* n_pages * 1024 + 1 */
    tm_pv_rule *rules;
    tm_pv_timer *timers;
    const uint64_t *cycles;
    uint64_t own_cycles;
    tm_pv_event *events;
    uint64_t n_events, cap_events;
    tm_pv_notify_fn notify;
    void *notify_user;
    /* DWT_CYCCNT = value + cycles - since while enabled; value while stopped */
    uint64_t cyccnt_value, cyccnt_since;
    tm_systick systick;
    tm_pv_python_fn python;
    void *python_user;
    uint32_t *page_base; /* absolute address of each page (for Python accesses) */
} tm_pv_dev;

static inline uint64_t tm_pv_now(const tm_pv_dev *d) { return *d->cycles >> TM_PV_FRAC_BITS; }

/* -- timers ------------------------------------------------------------------------- */

static uint64_t tm_timer_raw(const tm_pv_timer *t, uint64_t now) {
    if (!(t->cr1 & 1u))
        return t->base;
    uint64_t elapsed = now > t->base_cycle ? now - t->base_cycle : 0;
    uint64_t ticks = (uint64_t)((double)elapsed * t->ratio) / (t->psc + 1);
    return t->base + ticks;
}

static void tm_timer_rebase(tm_pv_timer *t, uint64_t now, uint64_t value) {
    t->base = value;
    t->base_cycle = now;
    t->seen = 0;
}

static uint32_t tm_timer_status(tm_pv_timer *t, uint64_t now) {
    uint64_t overflows = tm_timer_raw(t, now) / (t->arr + 1);
    if (overflows > t->seen) {
        t->sr |= 1u;
        t->seen = overflows;
    }
    return t->sr;
}

static int tm_timer_read(tm_pv_timer *t, uint32_t offset, uint64_t now, uint32_t *out) {
    switch (offset) {
    case TM_CNT: *out = (uint32_t)(tm_timer_raw(t, now) % (t->arr + 1)); return 1;
    case TM_SR: *out = tm_timer_status(t, now); return 1;
    case TM_CR1: *out = t->cr1; return 1;
    case TM_DIER: *out = t->dier; return 1;
    case TM_PSC: *out = (uint32_t)t->psc_preload; return 1;
    case TM_ARR: *out = (uint32_t)t->arr; return 1;
    case TM_EGR: *out = 0; return 1;
    default: return 0;
    }
}

static int tm_timer_write(tm_pv_timer *t, uint32_t offset, uint32_t value, uint64_t now) {
    switch (offset) {
    case TM_CR1: {
        uint64_t raw = tm_timer_raw(t, now);
        t->cr1 = value & 0x3FFu;
        tm_timer_rebase(t, now, raw % (t->arr + 1));
        return 1;
    }
    case TM_CNT: tm_timer_rebase(t, now, value & t->top); return 1;
    case TM_PSC: t->psc_preload = value & 0xFFFFu; return 1;
    case TM_ARR: {
        uint64_t count = tm_timer_raw(t, now) % (t->arr + 1);
        t->arr = value & t->top;
        tm_timer_rebase(t, now, count);
        return 1;
    }
    case TM_EGR:
        if (value & 1u) { /* update event: counter and prescaler restart, PSC loads */
            t->psc = t->psc_preload;
            tm_timer_rebase(t, now, 0);
            t->sr |= 1u;
        }
        return 1;
    case TM_SR: /* rc_w0 */
        tm_timer_status(t, now);
        t->sr &= value;
        return 1;
    case TM_DIER: t->dier = value & 0xFFFFu; return 1;
    default: return 0;
    }
}

/* -- SysTick ------------------------------------------------------------------------ */

/* Transitions 1 -> 0 of the counter within `elapsed` cycles of the last restart. */
static uint64_t tm_syst_zeros(const tm_systick *st, int64_t elapsed) {
    int64_t first;
    if (st->start_value)
        first = st->start_value;
    else if (st->rvr)
        first = (int64_t)st->rvr + 1; /* 0 -> reload RVR -> counts down to 0 */
    else
        return 0;
    if (elapsed < first)
        return 0;
    return 1 + (st->rvr ? (uint64_t)(elapsed - first) / ((uint64_t)st->rvr + 1) : 0);
}

/* Current CVR: counts down one per cycle; from 0 the next cycle reloads RVR. */
static uint32_t tm_syst_value(const tm_systick *st, int64_t now) {
    if (!(st->csr & TM_SYST_ENABLE))
        return st->frozen;
    int64_t t = now - st->start_cycle;
    if (t <= st->start_value)
        return (uint32_t)(st->start_value - t);
    if (st->rvr == 0)
        return 0;
    return st->rvr - (uint32_t)((uint64_t)(t - st->start_value - 1) % ((uint64_t)st->rvr + 1));
}

static void tm_syst_restart(tm_systick *st, int64_t now, uint32_t value) {
    st->start_value = value & TM_MASK24;
    st->start_cycle = now;
    st->reported_zeros = 0;
    st->delivered_zeros = 0;
}

static uint32_t tm_syst_read(tm_systick *st, uint32_t reg, int64_t now) {
    switch (reg) {
    case TM_SYST_CSR: {
        uint32_t csr = st->csr & ~TM_SYST_COUNTFLAG;
        if (st->csr & TM_SYST_ENABLE) {
            uint64_t zeros = tm_syst_zeros(st, now - st->start_cycle);
            if (zeros > st->reported_zeros) {
                csr |= TM_SYST_COUNTFLAG;
                st->reported_zeros = zeros; /* COUNTFLAG clears on read */
            }
        }
        return csr;
    }
    case TM_SYST_RVR: return st->rvr;
    case TM_SYST_CVR: return tm_syst_value(st, now);
    default: return 0; /* CALIB */
    }
}

/* Returns whether the write may move the next SysTick exception. */
static int tm_syst_write(tm_systick *st, uint32_t reg, uint32_t value, int64_t now) {
    switch (reg) {
    case TM_SYST_CSR: {
        int enable = (value & TM_SYST_ENABLE) != 0, was = (st->csr & TM_SYST_ENABLE) != 0;
        if (enable && !was)
            tm_syst_restart(st, now, st->frozen);
        else if (!enable && was)
            st->frozen = tm_syst_value(st, now);
        st->csr = value & 0x7u;
        return 1;
    }
    case TM_SYST_RVR: st->rvr = value & TM_MASK24; return 1;
    case TM_SYST_CVR: /* any write clears the counter (and COUNTFLAG) */
        st->frozen = 0;
        tm_syst_restart(st, now, 0);
        return 1;
    default: return 0; /* CALIB: read-only */
    }
}

/* -- events ------------------------------------------------------------------------- */

static void tm_pv_event_add(tm_pv_dev *d, uint64_t cycle, uint32_t name, uint32_t level) {
    if (d->n_events == d->cap_events) {
        uint64_t cap = d->cap_events ? 2 * d->cap_events : 256;
        tm_pv_event *grown = realloc(d->events, cap * sizeof *grown);
        if (grown == NULL) {
            d->oom = 1;
            return;
        }
        d->events = grown;
        d->cap_events = cap;
    }
    d->events[d->n_events++] = (tm_pv_event){cycle, name, level};
}

/* -- word access -------------------------------------------------------------------- */

static uint32_t tm_pv_read_word(tm_pv_dev *d, uint32_t w, unsigned size) {
    uint32_t value = d->store[w];
    for (uint32_t i = d->rule_first[w]; i < d->rule_first[w + 1]; i++) {
        const tm_pv_rule *r = &d->rules[i];
        switch (r->kind) {
        case TM_PV_OR: value |= r->a; break;
        case TM_PV_FOLLOW: {
            uint32_t bits = d->store[r->a] & r->b;
            bits = r->shift >= 0 ? bits << r->shift : bits >> -r->shift;
            value = (value & ~r->c) | (bits & r->c);
            break;
        }
        case TM_PV_FORCE: value = (value & ~r->a) | r->b; break;
        case TM_PV_CYCLES:
            if (size == 4)
                return (uint32_t)tm_pv_now(d);
            break;
        case TM_PV_CYCCNT:
            if (d->store[r->a] & 1u)
                return (uint32_t)(d->cyccnt_value + tm_pv_now(d) - d->cyccnt_since);
            return (uint32_t)d->cyccnt_value;
        case TM_PV_SYST:
            return tm_syst_read(&d->systick, r->b, (int64_t)tm_pv_now(d));
        case TM_PV_PYTHON:
            return d->python ? d->python(d->python_user, 0, d->page_base[w / TM_PV_PAGE_WORDS]
                                         + 4u * (w % TM_PV_PAGE_WORDS), 0) : value;
        case TM_PV_TIMER: {
            uint32_t out;
            if (tm_timer_read(&d->timers[r->a], r->b, tm_pv_now(d), &out))
                return out;
            break;
        }
        default: break;
        }
    }
    return value;
}

static void tm_pv_gpio(tm_pv_dev *d, const tm_pv_rule *g, uint32_t w, uint32_t value) {
    uint32_t odr_word = g->c;
    uint32_t old = d->store[odr_word], now_odr;
    if (g->b == TM_PV_ODR)
        now_odr = value & 0xFFFFu;
    else if (g->b == TM_PV_BSRR)
        now_odr = (old | (value & 0xFFFFu)) & ~(value >> 16);
    else
        now_odr = old & ~(value & 0xFFFFu);
    d->store[odr_word] = now_odr;
    uint64_t now = tm_pv_now(d);
    for (uint32_t i = d->rule_first[w]; i < d->rule_first[w + 1]; i++) {
        const tm_pv_rule *r = &d->rules[i];
        if (r->kind == TM_PV_MARK && r->a == value) {
            tm_pv_event_add(d, now, r->b, r->c);
            return;
        }
    }
    uint32_t changed = old ^ now_odr;
    for (uint32_t pin = 0; pin < 16; pin++)
        if (changed >> pin & 1u)
            tm_pv_event_add(d, now, g->a * 16u + pin, now_odr >> pin & 1u);
}

static void tm_pv_write_word(tm_pv_dev *d, uint32_t w, uint32_t value, uint32_t written,
                             unsigned size, int byte0) {
    uint32_t clear = 0;
    int marked = 0;
    for (uint32_t i = d->rule_first[w]; i < d->rule_first[w + 1]; i++) {
        const tm_pv_rule *r = &d->rules[i];
        switch (r->kind) {
        case TM_PV_TIMER:
            if (tm_timer_write(&d->timers[r->a], r->b, value, tm_pv_now(d))) {
                if (d->notify)
                    d->notify(d->notify_user, TM_PV_NOTIFY_TIMER, r->a);
                return;
            }
            break;
        case TM_PV_GPIO:
            tm_pv_gpio(d, r, w, value);
            marked = 1;
            if (r->b != TM_PV_ODR)
                return; /* BSRR/BRR are write-only: the effect is in ODR */
            break; /* ODR: stored below (the whole word, as written) */
        case TM_PV_UART_DATA:
            if (byte0 && d->notify)
                d->notify(d->notify_user, TM_PV_NOTIFY_UART, written & 0xFFu);
            break;
        case TM_PV_CLEAR: clear |= r->a; break;
        case TM_PV_SYST:
            if (tm_syst_write(&d->systick, r->b, value, (int64_t)tm_pv_now(d)) && d->notify)
                d->notify(d->notify_user, TM_PV_NOTIFY_TIMER, 0);
            return;
        case TM_PV_PYTHON:
            if (d->python) {
                d->python(d->python_user, 1, d->page_base[w / TM_PV_PAGE_WORDS]
                          + 4u * (w % TM_PV_PAGE_WORDS), value);
                return;
            }
            break;
        case TM_PV_CYCCNT: /* a write sets the count */
            d->cyccnt_value = value;
            d->cyccnt_since = tm_pv_now(d);
            return;
        case TM_PV_CYCCNT_CTRL: { /* freeze or restart from the current count */
            uint64_t now = tm_pv_now(d);
            if (d->store[w] & 1u)
                d->cyccnt_value = (uint32_t)(d->cyccnt_value + now - d->cyccnt_since);
            d->cyccnt_since = now;
            break;
        }
        case TM_PV_MARK:
            if (!marked && size == 4 && r->a == value) {
                tm_pv_event_add(d, tm_pv_now(d), r->b, r->c);
                marked = 1;
            }
            break;
        default: break;
        }
    }
    d->store[w] = value & ~clear;
}

uint64_t tm_pv_read(tm_pv_dev *d, uint32_t page, uint64_t offset, unsigned size) {
    uint32_t w = page * TM_PV_PAGE_WORDS + (uint32_t)(offset >> 2);
    uint32_t word = tm_pv_read_word(d, w, size);
    uint32_t shift = 8u * (uint32_t)(offset & 3u);
    uint64_t mask = size >= 4 ? 0xFFFFFFFFull : ((1ull << (8u * size)) - 1);
    return ((uint64_t)word >> shift) & mask;
}

void tm_pv_write(tm_pv_dev *d, uint32_t page, uint64_t offset, unsigned size, uint64_t value) {
    uint32_t w = page * TM_PV_PAGE_WORDS + (uint32_t)(offset >> 2);
    uint32_t word = (uint32_t)value;
    if (size < 4) {
        uint32_t shift = 8u * (uint32_t)(offset & 3u);
        uint32_t mask = (uint32_t)(((1ull << (8u * size)) - 1) << shift);
        uint32_t old = d->store[w];
        for (uint32_t i = d->rule_first[w]; i < d->rule_first[w + 1]; i++)
            if (d->rules[i].kind == TM_PV_SYST || d->rules[i].kind == TM_PV_PYTHON)
                old = tm_pv_read_word(d, w, 4); /* registers not in storage */
        word = (old & ~mask) | (((uint32_t)value << shift) & mask);
    }
    tm_pv_write_word(d, w, word, (uint32_t)value, size, (offset & 3u) == 0);
}

/* Unicorn uc_cb_mmio_read_t / uc_cb_mmio_write_t; user data: a tm_pv_page. */
uint64_t tm_pv_mmio_read(void *uc, uint64_t offset, unsigned size, void *user) {
    (void)uc;
    tm_pv_page *p = user;
    return tm_pv_read(p->dev, p->index, offset, size);
}

void tm_pv_mmio_write(void *uc, uint64_t offset, unsigned size, uint64_t value, void *user) {
    (void)uc;
    tm_pv_page *p = user;
    tm_pv_write(p->dev, p->index, offset, size, value);
}

/* -- life cycle and queries --------------------------------------------------------- */

void tm_pv_destroy(tm_pv_dev *d) {
    if (d == NULL)
        return;
    free(d->pages);
    free(d->page_base);
    free(d->store);
    free(d->rule_first);
    free(d->rules);
    free(d->timers);
    free(d->events);
    free(d);
}

/* rules must be sorted by word; every word < n_pages * 1024. */
tm_pv_dev *tm_pv_create(uint32_t n_pages, const uint32_t *page_base, uint32_t n_rules,
                        const tm_pv_rule *rules, uint32_t n_timers,
                        const tm_pv_timer_spec *timers) {
    uint64_t words = (uint64_t)n_pages * TM_PV_PAGE_WORDS;
    tm_pv_dev *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->n_pages = n_pages;
    d->n_rules = n_rules;
    d->n_timers = n_timers;
    d->pages = calloc(n_pages ? n_pages : 1, sizeof *d->pages);
    d->page_base = calloc(n_pages ? n_pages : 1, sizeof *d->page_base);
    d->store = calloc(words ? words : 1, sizeof *d->store);
    d->rule_first = calloc(words + 1, sizeof *d->rule_first);
    d->rules = calloc(n_rules ? n_rules : 1, sizeof *d->rules);
    d->timers = calloc(n_timers ? n_timers : 1, sizeof *d->timers);
    if (!d->pages || !d->page_base || !d->store || !d->rule_first || !d->rules || !d->timers) {
        tm_pv_destroy(d);
        return NULL;
    }
    for (uint32_t i = 0; i < n_pages; i++) {
        d->pages[i] = (tm_pv_page){d, i};
        d->page_base[i] = page_base[i];
    }
    if (n_rules)
        memcpy(d->rules, rules, n_rules * sizeof *rules);
    uint32_t k = 0;
    for (uint64_t w = 0; w <= words; w++) {
        d->rule_first[w] = k;
        while (k < n_rules && d->rules[k].word == w)
            k++;
    }
    if (k != n_rules) { /* unsorted or out of range */
        tm_pv_destroy(d);
        return NULL;
    }
    for (uint32_t i = 0; i < n_timers; i++) {
        tm_pv_timer *t = &d->timers[i];
        t->top = timers[i].bits >= 32 ? 0xFFFFFFFFull : (1ull << timers[i].bits) - 1;
        t->arr = t->top;
        t->ratio = timers[i].clock_ratio;
    }
    d->cycles = &d->own_cycles;
    return d;
}

void tm_pv_poke(tm_pv_dev *d, uint32_t word, uint32_t value) { d->store[word] = value; }

void tm_pv_set_cycles(tm_pv_dev *d, const uint64_t *cycles) {
    d->cycles = cycles ? cycles : &d->own_cycles;
}

void tm_pv_set_own_cycles(tm_pv_dev *d, uint64_t whole) {
    d->own_cycles = whole << TM_PV_FRAC_BITS;
}

void tm_pv_set_notify(tm_pv_dev *d, tm_pv_notify_fn fn, void *user) {
    d->notify = fn;
    d->notify_user = user;
}

void tm_pv_set_python(tm_pv_dev *d, tm_pv_python_fn fn, void *user) {
    d->python = fn;
    d->python_user = user;
}

/* A SysTick exception is due at `now`: a zero crossing not delivered yet (TICKINT). */
int tm_pv_systick_asserted(tm_pv_dev *d, int64_t now) {
    tm_systick *st = &d->systick;
    if ((st->csr & (TM_SYST_ENABLE | TM_SYST_TICKINT)) != (TM_SYST_ENABLE | TM_SYST_TICKINT))
        return 0;
    uint64_t zeros = tm_syst_zeros(st, now - st->start_cycle);
    if (zeros > st->delivered_zeros) {
        st->delivered_zeros = zeros;
        return 1;
    }
    return 0;
}

/* Cycle of the next SysTick exception: 1 and *out, or 0 (none scheduled). */
int tm_pv_systick_next(const tm_pv_dev *d, int64_t *out) {
    const tm_systick *st = &d->systick;
    if ((st->csr & (TM_SYST_ENABLE | TM_SYST_TICKINT)) != (TM_SYST_ENABLE | TM_SYST_TICKINT))
        return 0;
    uint64_t k = st->delivered_zeros + 1;
    int64_t first = st->start_value ? st->start_value : (st->rvr ? (int64_t)st->rvr + 1 : 0);
    if (!first || (k > 1 && !st->rvr))
        return 0;
    *out = st->start_cycle + first + (int64_t)(k - 1) * ((int64_t)st->rvr + 1);
    return 1;
}

void *tm_pv_page_ctx(tm_pv_dev *d, uint32_t page) { return &d->pages[page]; }

uint64_t tm_pv_event_count(const tm_pv_dev *d) { return d->n_events; }

uint32_t tm_pv_oom(const tm_pv_dev *d) { return d->oom; }

uint64_t tm_pv_events(const tm_pv_dev *d, uint64_t *cycle, uint32_t *name, uint32_t *level,
                      uint64_t max) {
    uint64_t n = d->n_events < max ? d->n_events : max;
    for (uint64_t i = 0; i < n; i++) {
        cycle[i] = d->events[i].cycle;
        name[i] = d->events[i].name;
        level[i] = d->events[i].level;
    }
    return n;
}

/* Cycle of timer i's next overflow (update event) if it runs: 1 and *out, else 0. */
int tm_pv_timer_next_update(tm_pv_dev *d, uint32_t i, uint64_t now, uint64_t *out) {
    const tm_pv_timer *t = &d->timers[i];
    if (!(t->cr1 & 1u))
        return 0;
    uint64_t overflows = tm_timer_raw(t, now) / (t->arr + 1);
    int64_t period_ticks = (int64_t)((t->arr + 1) * (overflows + 1)) - (int64_t)t->base;
    double cycles = (double)(period_ticks * (int64_t)(t->psc + 1)) / t->ratio;
    *out = t->base_cycle + (uint64_t)(int64_t)(cycles + 0.999999);
    return 1;
}

uint32_t tm_pv_timer_dier(const tm_pv_dev *d, uint32_t i) { return d->timers[i].dier; }

/* Update interrupt pending: UIF set (or newly set) and enabled in DIER. */
int tm_pv_timer_pending(tm_pv_dev *d, uint32_t i, uint64_t now) {
    tm_pv_timer *t = &d->timers[i];
    return (t->dier & 1u) && (tm_timer_status(t, now) & 1u);
}

uint32_t tm_pv_abi_version(void) { return TM_PV_ABI_VERSION; }
uint64_t tm_pv_rule_size(void) { return sizeof(tm_pv_rule); }
uint64_t tm_pv_timer_spec_size(void) { return sizeof(tm_pv_timer_spec); }

static struct PyModuleDef tm_pv_module = {
    PyModuleDef_HEAD_INIT, "_periph",
    "Native MMIO peripheral registers; used through ctypes, see tinymeter.sim.native_periph.",
    -1, NULL,
};

PyMODINIT_FUNC PyInit__periph(void) { return PyModule_Create(&tm_pv_module); }
