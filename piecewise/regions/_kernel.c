/* The compiled kernel of exact enumeration: one elementwise stage (relu, leaky, abs, hardtanh, PReLU) on
 * a batch of stage-start cells, for 2-D polygons and n-D polytopes.
 *
 * It does what piecewise/regions/_engine.py's elementwise_stage does with NumPy, with the same rules and
 * the same float64 expressions (compiled with -ffp-contract=off, so no fused multiply-add changes a
 * rounding):
 *
 *   - values at vertices: f = (e + x0 g0) + x1 g1 + ...;
 *   - their error bounds (piecewise/numerics.py): tol = (A + B |x|_inf) + C delta_x per vertex and unit, with
 *     A = (gamma_{d+3} |e| + De) S, B = (gamma_{d+1} |g|_1 + Dg) S, C = (|g|_1 + Dg) S (S: the safety factor);
 *   - a sign is known where |f| > tol (or f = 0 with tol = 0). A stage-start cell where some sign is not
 *     known is *deferred*: the kernel leaves it untouched (its events and cells rolled back) and reports it,
 *     and the NumPy path decides it exactly;
 *   - a unit splits a cell iff some vertex is > tol and some vertex is < -tol; otherwise its side is 1 if
 *     some vertex is > tol, 0 if some is < -tol, and the state at the breakpoint (flat) if neither;
 *   - 2-D: the polygon clip of _Poly2D.clip (counter-clockwise, edge labels);
 *   - n-D: the combinatorial clip of polytopes._clip (vertex-facet incidence bitsets, the edge test of
 *     shared facets with no third vertex, the lowest free slot for the new facet, crowded slots freed);
 *   - every new vertex gets its error bound (numerics.interpolation_error).
 *
 * The descendants of different stage-start cells never interact, so the kernel takes them one at a
 * time: the cell's pieces are split unit by unit, breakpoint by breakpoint; a unit that does not cross
 * the stage-start cell gives every piece that cell's side without testing the pieces. Each piece keeps
 * its state of every unit of the stage (int8: the sum of its sides over the breakpoints).
 *
 * Split events are recorded as (stage-start row, unit, breakpoint); the new edges / facets carry the label
 * NEWBASE + the event's index in this call, which the caller turns into event-table ids.
 *
 * Interface (ctypes; no Python API, so the GIL is released during a call): pw_stage() returns a handle
 * with the pieces, pw_sizes() their counts, pw_fetch() copies them into the caller's arrays and frees the
 * handle (pw_free() frees without copying). Errors: a handle with err != 0 (1: more than max_cells cells
 * in all, counted in a counter shared by all calls of a stage; 2: a cell with more than 64 facets;
 * 3: out of memory).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

/* The constants shared with Python are written once, in piecewise/_shared.py; setup.py passes them here as
 * PW_<name> macros (doubles as exact hexadecimal literals). */
#if !defined(PW_U) || !defined(PW_SAFETY) || !defined(PW_NOLAB) || !defined(PW_NEWBASE) || !defined(PW_F)
#error "build the kernel through setup.py (pip install -e .): it defines the PW_* constants from piecewise/_shared.py"
#endif
#define NEWBASE PW_NEWBASE
#define UROUND PW_U
#define SAFETY PW_SAFETY
#define NOLAB PW_NOLAB
#define F PW_F

/* grow one of several parallel arrays that share a capacity (returns 1 from the caller on failure) */
#define GROW_ONE(ptr, newcap, per)                                              \
    do {                                                                         \
        void *q_ = realloc((ptr), (size_t)(newcap) * (per) * sizeof(*(ptr)));    \
        if (!q_)                                                                 \
            return 1;                                                            \
        (ptr) = q_;                                                              \
    } while (0)

typedef struct {
    /* output pieces */
    int64_t n, cap;
    int64_t *voff;   /* first vertex of each piece in the vertex pool */
    int32_t *vcnt;
    int64_t *row;    /* stage-start row (of G, E) */
    int8_t *state;   /* w per piece */
    int32_t *flab;   /* n-D: 64 per piece */
    /* output vertex pool */
    int64_t nv, vcap;
    double *x;       /* d per vertex */
    double *dv;      /* error bound (max-norm) per vertex */
    int32_t *lab;    /* 2-D: label of the edge from this vertex to the next */
    uint64_t *inc;   /* n-D: facet slots of the vertex */
    /* deferred stage-start cells (a sign float64 could not decide) */
    int64_t nd_, dcap;
    int64_t *deferred;
    /* events */
    int64_t ne, ecap;
    int64_t *ev_row;
    int32_t *ev_unit;
    int8_t *ev_q;
    int kmax;
    int err;
    int nd;
} Out;

/* a working set of pieces for one stage-start cell (same layout, reused between cells) */
typedef struct {
    int64_t n, cap;         /* live pieces */
    int64_t *voff;
    int32_t *vcnt;
    int8_t *state;          /* w per piece */
    int32_t *flab;          /* 64 per piece (n-D) */
    int64_t nv, vcap;       /* vertex arena (append only within a cell) */
    double *x;
    double *dv;
    double *vi;             /* |x|_inf per vertex */
    int32_t *lab;
    uint64_t *inc;
    int64_t scap;           /* scratch of the n-D clip: candidate edges and vertex classes */
    int *ei, *ej;
    uint64_t *ecm;
    char *cls;
    double *xn, *dn, *vn;   /* the new vertices of a clip (once for both pieces) */
} Work;

static int work_scratch(Work *W, int64_t n, int d)
{
    int64_t need = n * n + n + 1;
    if (need <= W->scap) return 0;
    int64_t c = W->scap ? W->scap : 256;
    while (c < need) c *= 2;
    GROW_ONE(W->ei, c, 1);
    GROW_ONE(W->ej, c, 1);
    GROW_ONE(W->ecm, c, 1);
    GROW_ONE(W->cls, c, 1);
    GROW_ONE(W->xn, c, d > 0 ? d : 1);
    GROW_ONE(W->dn, c, 1);
    GROW_ONE(W->vn, c, 1);
    W->scap = c;
    return 0;
}


static int work_pieces(Work *W, int64_t need, int w, int nd)
{
    if (need <= W->cap) return 0;
    int64_t c = W->cap ? W->cap : 64;
    while (c < need) c *= 2;
    GROW_ONE(W->voff, c, 1);
    GROW_ONE(W->vcnt, c, 1);
    GROW_ONE(W->state, c, (w > 0 ? w : 1));
    if (nd) GROW_ONE(W->flab, c, F);
    W->cap = c;
    return 0;
}

static int work_verts(Work *W, int64_t need, int d, int nd)
{
    if (need <= W->vcap) return 0;
    int64_t c = W->vcap ? W->vcap : 256;
    while (c < need) c *= 2;
    GROW_ONE(W->x, c, d);
    GROW_ONE(W->dv, c, 1);
    GROW_ONE(W->vi, c, 1);
    if (nd) GROW_ONE(W->inc, c, 1);
    else GROW_ONE(W->lab, c, 1);
    W->vcap = c;
    return 0;
}

static int out_pieces(Out *O, int64_t need, int w, int nd)
{
    if (need <= O->cap) return 0;
    int64_t c = O->cap ? O->cap : 256;
    while (c < need) c *= 2;
    GROW_ONE(O->voff, c, 1);
    GROW_ONE(O->vcnt, c, 1);
    GROW_ONE(O->row, c, 1);
    GROW_ONE(O->state, c, (w > 0 ? w : 1));
    if (nd) GROW_ONE(O->flab, c, F);
    O->cap = c;
    return 0;
}

static int out_verts(Out *O, int64_t need, int d, int nd)
{
    if (need <= O->vcap) return 0;
    int64_t c = O->vcap ? O->vcap : 1024;
    while (c < need) c *= 2;
    GROW_ONE(O->x, c, d);
    GROW_ONE(O->dv, c, 1);
    if (nd) GROW_ONE(O->inc, c, 1);
    else GROW_ONE(O->lab, c, 1);
    O->vcap = c;
    return 0;
}

static int out_event(Out *O, int64_t row, int32_t unit, int8_t q)
{
    if (O->ne >= O->ecap) {
        int64_t c = O->ecap ? 2 * O->ecap : 1024;
        GROW_ONE(O->ev_row, c, 1);
        GROW_ONE(O->ev_unit, c, 1);
        GROW_ONE(O->ev_q, c, 1);
        O->ecap = c;
    }
    O->ev_row[O->ne] = row;
    O->ev_unit[O->ne] = unit;
    O->ev_q[O->ne] = q;
    O->ne++;
    return 0;
}

static int out_deferred(Out *O, int64_t c)
{
    if (O->nd_ >= O->dcap) {
        int64_t cc = O->dcap ? 2 * O->dcap : 256;
        GROW_ONE(O->deferred, cc, 1);
        O->dcap = cc;
    }
    O->deferred[O->nd_++] = c;
    return 0;
}

static inline double vinf_of(const double *x, int d)
{
    double m = 0.0;
    for (int i = 0; i < d; i++) {
        double a = fabs(x[i]);
        if (a > m) m = a;
    }
    return m;
}

static inline double gamma_n(int n) { return (double)n * UROUND / (1.0 - (double)n * UROUND); }

/* the hyperplanes of facet labels, for new vertices' error bounds: the event table of earlier calls (evg (NE, d),
 * eve, evdg, evde), this call's own events (label NEWBASE + i: row ev_row[i], unit ev_unit[i], breakpoint ev_q[i],
 * with G, E, Dg, De, bps), and box facets (-1 - i: c_i = -1/2; -1 - d - i: c_i = 1/2) */
typedef struct {
    int d, w;
    const double *evg, *eve, *evdg, *evde;
    const double *G, *E, *Dg, *De, *bps;
    const Out *O;
} Planes;

static void plane_of(const Planes *P, int32_t label, double *g, double *e, double *dg, double *de)
{
    int d = P->d;
    if (label >= NEWBASE) {
        int64_t i = label - NEWBASE;
        int64_t r = P->O->ev_row[i];
        int j = P->O->ev_unit[i], q = P->O->ev_q[i];
        for (int c = 0; c < d; c++) g[c] = P->G[(r * d + c) * P->w + j];
        *e = P->E[r * P->w + j] - P->bps[q];
        *dg = P->Dg[j];
        *de = P->De[j];
    } else if (label >= 0) {
        for (int c = 0; c < d; c++) g[c] = P->evg[(int64_t)label * d + c];
        *e = P->eve[label];
        *dg = P->evdg[label];
        *de = P->evde[label];
    } else {
        int i = -1 - label;
        for (int c = 0; c < d; c++) g[c] = 0.0;
        g[i % d] = 1.0;
        *e = i >= d ? -0.5 : 0.5;
        *dg = 0.0;
        *de = 0.0;
    }
}

/* numerics.inverse_norm for one d x d matrix (row-major, overwritten): a bound of ||S^-1||_inf; *singular set */
static double inverse_norm(double *A, double *M, int d, int *singular)
{
    (void)M;
    if (d == 1) {
        double a = fabs(A[0]);
        if (a == 0.0) { *singular = 1; return 1.0; }
        return 1.0 / a;
    }
    if (d == 2) {
        double det = A[0] * A[3] - A[1] * A[2];
        double n1 = fabs(A[3]) + fabs(A[1]), n2 = fabs(A[2]) + fabs(A[0]);
        double num = n1 > n2 ? n1 : n2;
        if (det == 0.0) { *singular = 1; return num; }
        return num / fabs(det);
    }
    double det = 1.0;
    for (int c = 0; c < d; c++) {
        int p = c;
        double best = fabs(A[c * d + c]);
        for (int r = c + 1; r < d; r++)
            if (fabs(A[r * d + c]) > best) { best = fabs(A[r * d + c]); p = r; }
        if (p != c)
            for (int k = 0; k < d; k++) { double t = A[c * d + k]; A[c * d + k] = A[p * d + k]; A[p * d + k] = t; }
        double piv = A[c * d + c];
        det = det * fabs(piv);
        double pz = piv == 0.0 ? 1.0 : piv;
        for (int r = c + 1; r < d; r++) {
            double fr = A[r * d + c] / pz;
            for (int k = 0; k < d; k++) A[r * d + k] = A[r * d + k] - fr * A[c * d + k];
        }
    }
    if (det == 0.0) { *singular = 1; return (double)d; }
    return (double)d / det;
}

/* numerics.residual_bound for one point v (d,) and R rows (Gr (R, d), er, dgr, der), the same expressions;
 * scratch: at least R * d + 2 * d * d + 3 * R + d doubles */
static double residual_bound1(const double *v, int d, int R, const double *Gr, const double *er, const double *dgr,
                              const double *der, double *scratch)
{
    double *N = scratch, *rho = N + R * d, *eta = rho + R, *A = eta + R, *S = A + R * d, *M = S + d * d;
    char ok[R > 0 ? R : 1], used_r[R > 0 ? R : 1], used_c[d];
    int rows[d];
    double vinf = 0.0;
    for (int i = 0; i < d; i++) { double a = fabs(v[i]); if (a > vinf) vinf = a; }
    double g1 = (double)(d + 1) * UROUND / (1.0 - (double)(d + 1) * UROUND);
    for (int k = 0; k < R; k++) {
        const double *g = Gr + (int64_t)k * d;
        double f = er[k] + v[0] * g[0], nrm = fabs(g[0]);
        for (int i = 1; i < d; i++) { f = f + v[i] * g[i]; nrm = nrm + fabs(g[i]); }
        ok[k] = nrm > 0.0;
        double nz = ok[k] ? nrm : 1.0;
        rho[k] = (fabs(f) + (((g1 * (fabs(er[k]) + vinf * nrm)) + der[k]) + vinf * dgr[k]) * SAFETY) / nz;
        eta[k] = dgr[k] / nz;
        for (int i = 0; i < d; i++) N[k * d + i] = ok[k] ? g[i] / nz : 0.0;
        used_r[k] = !ok[k];
    }
    int bad = 0, nok = 0;
    for (int k = 0; k < R; k++) nok += ok[k];
    if (nok == d) {  /* exactly d rows: they are the ones (numerics.residual_bound does the same) */
        int t = 0;
        for (int k = 0; k < R; k++)
            if (ok[k]) rows[t++] = k;
    }
    for (int i = 0; i < R * d && nok != d; i++) A[i] = N[i];
    for (int i = 0; i < d; i++) used_c[i] = 0;
    for (int step = 0; step < d && nok != d; step++) {
        int br = 0, bc = 0;
        double best = (used_r[0] || used_c[0]) ? 0.0 : fabs(A[0]);
        for (int r = 0; r < R; r++)
            for (int c = 0; c < d; c++) {
                double am = (used_r[r] || used_c[c]) ? 0.0 : fabs(A[r * d + c]);
                if (am > best) { best = am; br = r; bc = c; }
            }
        double piv = A[br * d + bc];
        if (best == 0.0) bad = 1;
        rows[step] = br;
        used_r[br] = 1;
        used_c[bc] = 1;
        double pd = piv == 0.0 ? 1.0 : piv;
        for (int k = 0; k < R; k++) {
            double fac = (used_r[k] ? 0.0 : A[k * d + bc]) / pd;
            for (int c = 0; c < d; c++) A[k * d + c] = A[k * d + c] - fac * A[br * d + c];
        }
    }
    for (int i = 0; i < d; i++)
        for (int c = 0; c < d; c++) S[i * d + c] = N[rows[i] * d + c];
    int singular = 0;
    double kappa = inverse_norm(S, M, d, &singular);
    if (singular) bad = 1;
    double rS = rho[rows[0]], eS = eta[rows[0]];
    for (int i = 1; i < d; i++) {
        if (rho[rows[i]] > rS) rS = rho[rows[i]];
        if (eta[rows[i]] > eS) eS = eta[rows[i]];
    }
    double den = 1.0 - kappa * eS;
    if (den <= 0.0 || (double)(4 * d) * kappa * UROUND > 1e-6) bad = 1;
    if (bad) return INFINITY;
    return kappa * rS / den * (1.0 + (double)(8 * d) * kappa * UROUND) * SAFETY;
}

static inline double value_at(const double *x, const double *g, double e, int d)
{
    double f = e + x[0] * g[0];
    for (int i = 1; i < d; i++) f = f + x[i] * g[i];
    return f;
}

/* bit count without a library call (the default x86-64 target has no popcnt instruction) */
static inline int popcount64(uint64_t a)
{
    a = a - ((a >> 1) & 0x5555555555555555ULL);
    a = (a & 0x3333333333333333ULL) + ((a >> 2) & 0x3333333333333333ULL);
    a = (a + (a >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    return (int)((a * 0x0101010101010101ULL) >> 56);
}

/* side test of one piece: values into f, tolerances into tv; returns bit 1 = some > tol, bit 2 = some
 * < -tol, bit 4 = some sign not known (|f| <= tol, unless f = 0 with tol = 0) */
static int piece_sides(const double *x, const double *dv, const double *vi, int nv, const double *g, double e,
                       double A, double B, double C, int d, double *f, double *tv)
{
    int r = 0;
    for (int k = 0; k < nv; k++) {
        const double *xk = x + (int64_t)k * d;
        double v = value_at(xk, g, e, d);
        double t = (A + B * vi[k]) + C * dv[k];
        f[k] = v;
        tv[k] = t;
        if (v > t) r |= 1;
        else if (v < -t) r |= 2;
        else if (!(t == 0.0 && v == 0.0)) r |= 4;
    }
    return r;
}

/* -- 2-D polygon clip ---------------------------------------------------------------------------- */
/* piece s (vertices at W->x + voff*2, labels W->lab) split by f (values at its vertices, tolerances tv; every
 * sign known): appends the + piece then the - piece to the arena; returns their offsets/counts. */
static int clip2d(Work *W, int64_t off, int n, const double *f, const double *tv, int32_t label,
                  const Planes *P, const double *cg, double ce, double cdg, double cde, double *scratch,
                  int64_t *off_p, int32_t *n_p, int64_t *off_m, int32_t *n_m)
{
    if (work_verts(W, W->nv + 2 * (n + 2), 2, 0)) return 1;
    double fz[n > 0 ? n : 1];
    for (int k = 0; k < n; k++) fz[k] = fabs(f[k]) <= tv[k] ? 0.0 : f[k];
    double cx[2 * n + 2], cd[n + 1], cv[n + 1];  /* each crossing once, for both pieces */
    for (int k = 0; k < n; k++) {
        int kn = k + 1 < n ? k + 1 : 0;
        double a = fz[k], b = fz[kn];
        if (!(a * b < 0)) continue;
        const double *V = W->x + (off + k) * 2, *Vn = W->x + (off + kn) * 2;
        double t = a / (a - b);
        cx[2 * k] = V[0] + t * (Vn[0] - V[0]);
        cx[2 * k + 1] = V[1] + t * (Vn[1] - V[1]);
        double Gr[4], er[2], dgr[2], der[2];
        plane_of(P, W->lab[off + k], Gr, er, dgr, der);
        Gr[2] = cg[0];
        Gr[3] = cg[1];
        er[1] = ce;
        dgr[1] = cdg;
        der[1] = cde;
        cd[k] = residual_bound1(cx + 2 * k, 2, 2, Gr, er, dgr, der, scratch);
        cv[k] = vinf_of(cx + 2 * k, 2);
    }
    for (int piece = 0; piece < 2; piece++) {
        int64_t o = W->nv;
        int m = 0;
        /* on_cut flags and source edge of each output vertex */
        char oc[2 * n + 2];
        int src[2 * n + 2];
        for (int k = 0; k < n; k++) {
            int kn = k + 1 < n ? k + 1 : 0;
            double a = fz[k], b = fz[kn];
            int keep = piece == 0 ? (a >= 0) : (a <= 0);
            const double *V = W->x + (off + k) * 2;
            if (keep) {
                W->x[(o + m) * 2] = V[0];
                W->x[(o + m) * 2 + 1] = V[1];
                W->dv[o + m] = W->dv[off + k];
                W->vi[o + m] = W->vi[off + k];
                oc[m] = (a == 0.0);
                src[m] = k;
                m++;
            }
            if (a * b < 0) {
                W->x[(o + m) * 2] = cx[2 * k];
                W->x[(o + m) * 2 + 1] = cx[2 * k + 1];
                W->dv[o + m] = cd[k];
                W->vi[o + m] = cv[k];
                oc[m] = 1;
                src[m] = k;
                m++;
            }
        }
        for (int i = 0; i < m; i++) {
            int inx = i + 1 < m ? i + 1 : 0;
            W->lab[o + i] = (oc[i] && oc[inx]) ? label : W->lab[off + src[i]];
        }
        W->nv += m;
        if (piece == 0) { *off_p = o; *n_p = m; }
        else { *off_m = o; *n_m = m; }
    }
    return 0;
}

/* -- n-D polytope clip --------------------------------------------------------------------------- */
static void free_crowded(Work *W, int64_t o, int m, int32_t *flab, int d)
{
    uint64_t used = 0;
    for (int k = 0; k < m; k++) used |= W->inc[o + k];
    if (popcount64(used) < F - 8) return;
    uint64_t weak = 0;
    for (int s = 0; s < F; s++) {
        int cnt = 0;
        for (int k = 0; k < m; k++) cnt += (int)((W->inc[o + k] >> s) & 1u);
        if (cnt < d) weak |= (uint64_t)1 << s;
    }
    for (int k = 0; k < m; k++) W->inc[o + k] &= ~weak;
    for (int s = 0; s < F; s++)
        if ((weak >> s) & 1u) flab[s] = NOLAB;
}

/* returns 0, 1 (memory) or 2 (no free facet slot) */
static int clipnd(Work *W, int64_t off, int n, const double *f, const double *tv, int32_t label, int d,
                  const int32_t *flab_in, int32_t *flab_p, int32_t *flab_m,
                  const Planes *P, const double *cg, double ce, double cdg, double cde, double *scratch,
                  double *Gr, double *er, double *dgr, double *der,
                  int64_t *off_p, int32_t *n_p, int64_t *off_m, int32_t *n_m)
{
    uint64_t used = 0;
    for (int k = 0; k < n; k++) used |= W->inc[off + k];
    uint64_t freeb = ~used;
    if (freeb == 0) return 2;
    uint64_t low = freeb & (~freeb + 1);
    int slot = __builtin_ctzll(low);
    if (work_scratch(W, n, d)) return 1;
    char *cls = W->cls; /* 1 +, 2 -, 3 zero */
    int *ei = W->ei, *ej = W->ej;
    uint64_t *ecm = W->ecm;
    for (int k = 0; k < n; k++) cls[k] = f[k] > tv[k] ? 1 : (f[k] < -tv[k] ? 2 : 3);
    /* edges between a + and a - vertex */
    int ne = 0;
    for (int i = 0; i < n; i++) {
        if (cls[i] != 1) continue;
        uint64_t ii = W->inc[off + i];
        for (int j = 0; j < n; j++) {
            if (cls[j] != 2) continue;
            uint64_t cm = ii & W->inc[off + j];
            if (popcount64(cm) < d - 1) continue;
            int third = 0;
            for (int k = 0; k < n; k++) {
                if (k == i || k == j) continue;
                if ((W->inc[off + k] & cm) == cm) { third = 1; break; }
            }
            if (!third) { ei[ne] = i; ej[ne] = j; ecm[ne] = cm; ne++; }
        }
    }
    if (work_verts(W, W->nv + 2 * (n + ne), d, 1)) return 1;
    for (int t = 0; t < ne; t++) {  /* the new vertices, their error bounds and norms (shared by both pieces) */
        const double *Xi = W->x + (off + ei[t]) * d, *Xj = W->x + (off + ej[t]) * d;
        double fi = f[ei[t]], fj = f[ej[t]];
        double tt = fi / (fi - fj);
        double *Xo = W->xn + (int64_t)t * d;
        for (int c = 0; c < d; c++) Xo[c] = Xi[c] + tt * (Xj[c] - Xi[c]);
        int R = 0;
        for (uint64_t bits = ecm[t]; bits; bits &= bits - 1) {
            int sl = __builtin_ctzll(bits);
            if (flab_in[sl] != NOLAB) {
                plane_of(P, flab_in[sl], Gr + R * d, er + R, dgr + R, der + R);
                R++;
            }
        }
        for (int c = 0; c < d; c++) Gr[R * d + c] = cg[c];
        er[R] = ce;
        dgr[R] = cdg;
        der[R] = cde;
        R++;
        W->dn[t] = residual_bound1(Xo, d, R, Gr, er, dgr, der, scratch);
        W->vn[t] = vinf_of(Xo, d);
    }
    for (int piece = 0; piece < 2; piece++) {
        int64_t o = W->nv;
        int m = 0;
        int want = piece == 0 ? 1 : 2;
        for (int k = 0; k < n; k++) {
            if (cls[k] != want && cls[k] != 3) continue;
            memcpy(W->x + (o + m) * d, W->x + (off + k) * d, sizeof(double) * d);
            W->dv[o + m] = W->dv[off + k];
            W->vi[o + m] = W->vi[off + k];
            W->inc[o + m] = W->inc[off + k] | (cls[k] == 3 ? low : 0);
            m++;
        }
        for (int t = 0; t < ne; t++) {
            memcpy(W->x + (o + m) * d, W->xn + (int64_t)t * d, sizeof(double) * d);
            W->dv[o + m] = W->dn[t];
            W->vi[o + m] = W->vn[t];
            W->inc[o + m] = ecm[t] | low;
            m++;
        }
        int32_t *fl = piece == 0 ? flab_p : flab_m;
        memcpy(fl, flab_in, sizeof(int32_t) * F);
        fl[slot] = label;
        free_crowded(W, o, m, fl, d);
        W->nv += m;
        if (piece == 0) { *off_p = o; *n_p = m; }
        else { *off_m = o; *n_m = m; }
    }
    return 0;
}

/* -- the stage ----------------------------------------------------------------------------------- */
/* scratch of one stage-start cell's test of all units */
typedef struct {
    int64_t fcap, wcap;
    double *fv;            /* n0 * w values */
    double *ev, *ta, *tb, *tc, *tt;  /* w: offsets, the tolerance coefficients A, B, C, their bound over a cell */
    uint8_t *up, *dn, *un; /* w */
    uint8_t *cross;        /* w * nb */
    int8_t *base;          /* w */
} Scratch;

static int work_cell(Scratch *S, int n0, int w, int nb)
{
    int64_t need = (int64_t)n0 * w;
    if (need > S->fcap) {
        int64_t c = S->fcap ? S->fcap : 1024;
        while (c < need) c *= 2;
        GROW_ONE(S->fv, c, 1);
        S->fcap = c;
    }
    if (w * nb > S->wcap) {
        int64_t c = (int64_t)w * nb;
        GROW_ONE(S->ev, c, 1);
        GROW_ONE(S->ta, c, 1);
        GROW_ONE(S->tb, c, 1);
        GROW_ONE(S->tc, c, 1);
        GROW_ONE(S->tt, c, 1);
        GROW_ONE(S->up, c, 1);
        GROW_ONE(S->dn, c, 1);
        GROW_ONE(S->un, c, 1);
        GROW_ONE(S->cross, c, 1);
        GROW_ONE(S->base, c, 1);
        S->wcap = c;
    }
    return 0;
}

/*
 * cells: idx (nc,) the input cells to take; geometry in ragged form: cell c has the n[c] vertices from
 *   vertex voff[c] on of x (V, d) with error bounds dv (V,), and 2-D: lab (V,) int32 (edge labels); n-D:
 *   inc (V,) uint64, flab (C, 64).
 * rows (C,): each input cell's row of G (P, d, w) and E (P, w); Dg, De (w,): the coefficients' error bounds.
 * bps (nb,), flat (nb,) int8: breakpoints and the side taken by a unit identically on each.
 * counter: cells in all (shared by the calls of a stage, atomically), max_cells: refuse past it.
 */
void *pw_stage(int nd, int64_t nc, const int64_t *idx, const int64_t *voff, int d, const double *x, const double *dvin,
               const int64_t *n, const int32_t *lab, const uint64_t *inc, const int32_t *flab, const int64_t *rows,
               int w, const double *G, const double *E, const double *Dg, const double *De, int nb, const double *bps,
               const int8_t *flat, const double *evg, const double *eve, const double *evdg, const double *evde,
               int64_t *counter, int64_t max_cells)
{
    Out *O = calloc(1, sizeof(Out));
    if (!O) return NULL;
    O->nd = nd;
    Work Wk;
    memset(&Wk, 0, sizeof(Wk));
    Work *W = &Wk;
    Scratch S;
    memset(&S, 0, sizeof(S));
    double *f = NULL, *tv = NULL;
    int64_t fcap = 0;
    double *g = malloc(sizeof(double) * (d > 0 ? d : 1));
    int32_t *fl_tmp = malloc(sizeof(int32_t) * 2 * F);
    double g1 = gamma_n(d + 1), g3 = gamma_n(d + 3);
    Planes PL = {d, w, evg, eve, evdg, evde, G, E, Dg, De, bps, O};
    int RMAX = F + 1;
    double *scratch = malloc(sizeof(double) * (RMAX * d + 2 * d * d + 3 * RMAX + d + 8));
    double *Gr = malloc(sizeof(double) * RMAX * d), *er = malloc(sizeof(double) * RMAX);
    double *dgr = malloc(sizeof(double) * RMAX), *der = malloc(sizeof(double) * RMAX);
    if (!g || !fl_tmp || !scratch || !Gr || !er || !dgr || !der) { O->err = 3; goto done; }
    for (int64_t ci = 0; ci < nc; ci++) {
        int64_t c = idx[ci];
        int64_t r = rows[c];
        int n0 = (int)n[c];
        int64_t ne0 = O->ne, splits = 0;
        /* the stage-start cell is piece 0 */
        W->n = 0;
        W->nv = 0;
        if (work_pieces(W, 1, w, nd) || work_verts(W, n0, d, nd)) { O->err = 3; goto done; }
        memcpy(W->x, x + voff[c] * d, sizeof(double) * n0 * d);
        memcpy(W->dv, dvin + voff[c], sizeof(double) * n0);
        for (int k = 0; k < n0; k++) W->vi[k] = vinf_of(W->x + (int64_t)k * d, d);
        if (nd) {
            memcpy(W->inc, inc + voff[c], sizeof(uint64_t) * n0);
            memcpy(W->flab, flab + c * (int64_t)F, sizeof(int32_t) * F);
        } else {
            memcpy(W->lab, lab + voff[c], sizeof(int32_t) * n0);
        }
        W->voff[0] = 0;
        W->vcnt[0] = n0;
        memset(W->state, 0, (size_t)w);
        W->nv = n0;
        W->n = 1;
        /* every unit and breakpoint against the stage-start cell at once (vectorised over the units):
         * fv[k * w + j] = value at vertex k, with the same expressions as value_at() */
        if (work_cell(&S, n0, w, nb)) { O->err = 3; goto done; }
        memset(S.base, 0, (size_t)w);
        int defer = 0;
        for (int q = 0; q < nb && !defer; q++) {
            double *restrict ev = S.ev, *restrict ta = S.ta, *restrict tb = S.tb, *restrict tc = S.tc;
            const double *restrict Er = E + r * (int64_t)w;
            const double *restrict G0 = G + r * (int64_t)d * w;
            for (int j = 0; j < w; j++) ev[j] = Er[j] - bps[q];
            for (int j = 0; j < w; j++) tc[j] = 0.0 + fabs(G0[j]);
            for (int i = 1; i < d; i++)
                for (int j = 0; j < w; j++) tc[j] = tc[j] + fabs(G0[i * w + j]);
            for (int j = 0; j < w; j++) {
                double ag = tc[j];
                ta[j] = (g3 * fabs(ev[j]) + De[j]) * SAFETY;
                tb[j] = (g1 * ag + Dg[j]) * SAFETY;
                tc[j] = (ag + Dg[j]) * SAFETY;
            }
            for (int k = 0; k < n0; k++) {
                double *restrict fk = S.fv + (int64_t)k * w;
                const double *xk = W->x + (int64_t)k * d;
                double x0 = xk[0];
                for (int j = 0; j < w; j++) fk[j] = ev[j] + x0 * G0[j];
                for (int i = 1; i < d; i++) {
                    double xi = xk[i];
                    const double *restrict Gi = G0 + (int64_t)i * w;
                    for (int j = 0; j < w; j++) fk[j] = fk[j] + xi * Gi[j];
                }
            }
            uint8_t *restrict up = S.up, *restrict dn = S.dn, *restrict un = S.un;
            memset(up, 0, (size_t)w);
            memset(dn, 0, (size_t)w);
            memset(un, 0, (size_t)w);
            /* a bound T_j >= every vertex's tolerance (the largest |x|_inf and error bound of the cell's vertices;
             * the float64 operations are monotone): a value beyond it is decided as the exact test decides it;
             * only units with a value within it take the exact per-vertex test */
            double vmax = 0.0, dmax = 0.0;
            for (int k = 0; k < n0; k++) {
                if (W->vi[k] > vmax) vmax = W->vi[k];
                if (W->dv[k] > dmax) dmax = W->dv[k];
            }
            double *restrict T = S.tt;
            for (int j = 0; j < w; j++) T[j] = (ta[j] + tb[j] * vmax) + tc[j] * dmax;
            for (int k = 0; k < n0; k++) {
                const double *restrict fk = S.fv + (int64_t)k * w;
                for (int j = 0; j < w; j++) {
                    double v = fk[j], t = T[j];
                    uint8_t u = v > t, dd = v < -t;
                    up[j] |= u;
                    dn[j] |= dd;
                    un[j] |= (uint8_t)!(u | dd);
                }
            }
            for (int j = 0; j < w; j++) {
                if (!un[j]) continue;
                up[j] = dn[j] = un[j] = 0;
                for (int k = 0; k < n0; k++) {
                    double v = S.fv[(int64_t)k * w + j];
                    double t = (ta[j] + tb[j] * W->vi[k]) + tc[j] * W->dv[k];
                    int u = v > t, dd = v < -t;
                    up[j] |= u;
                    dn[j] |= dd;
                    un[j] |= !u && !dd && !(t == 0.0 && v == 0.0);
                }
            }
            for (int j = 0; j < w; j++) {
                if (un[j]) { defer = 1; break; }
                int cross = up[j] && dn[j];
                S.cross[j * nb + q] = (uint8_t)cross;
                if (!cross) S.base[j] += (int8_t)(up[j] ? 1 : (dn[j] ? 0 : flat[q]));
            }
        }
        /* the pieces are split only by the units that cross the stage-start cell, in unit order; every
         * other unit's state is the stage-start cell's side (S.base), added at the end */
        for (int j = 0; j < w && !defer; j++) {
            for (int q = 0; q < nb && !defer; q++) {
                if (!S.cross[j * nb + q]) continue;
                double e = E[r * w + j] - bps[q];
                double sa = 0.0;
                for (int i = 0; i < d; i++) {
                    g[i] = G[(r * d + i) * w + j];
                    sa = sa + fabs(g[i]);
                }
                double A = (g3 * fabs(e) + De[j]) * SAFETY, B = (g1 * sa + Dg[j]) * SAFETY;
                double C = (sa + Dg[j]) * SAFETY;
                if (fcap < W->vcap) {
                    free(f);
                    free(tv);
                    fcap = W->vcap;
                    f = malloc(sizeof(double) * fcap);
                    tv = malloc(sizeof(double) * fcap);
                    if (!f || !tv) { O->err = 3; goto done; }
                }
                int64_t np0 = W->n;
                for (int64_t p = 0; p < np0; p++) {
                    int64_t off = W->voff[p];
                    int nv = W->vcnt[p];
                    int s = piece_sides(W->x + off * d, W->dv + off, W->vi + off, nv, g, e, A, B, C, d, f, tv);
                    if (s & 4) { defer = 1; break; }
                    if (s != 3) {
                        int side = (s & 1) ? 1 : ((s & 2) ? 0 : flat[q]);
                        W->state[p * w + j] += (int8_t)side;
                        continue;
                    }
                    /* split: p becomes the + piece, the - piece is appended */
                    splits++;
                    if (__atomic_add_fetch(counter, 1, __ATOMIC_RELAXED) > max_cells) { O->err = 1; goto done; }
                    int32_t label = NEWBASE + (int32_t)O->ne;
                    if (out_event(O, r, j, (int8_t)q)) { O->err = 3; goto done; }
                    if (work_pieces(W, W->n + 1, w, nd)) { O->err = 3; goto done; }
                    int64_t op = 0, om = 0;
                    int32_t npl = 0, nmi = 0;
                    int rc;
                    if (nd) {
                        memcpy(fl_tmp, W->flab + p * F, sizeof(int32_t) * F);
                        rc = clipnd(W, off, nv, f, tv, label, d, fl_tmp, W->flab + p * F, W->flab + W->n * F,
                                    &PL, g, e, Dg[j], De[j], scratch, Gr, er, dgr, der, &op, &npl, &om, &nmi);
                    } else {
                        rc = clip2d(W, off, nv, f, tv, label, &PL, g, e, Dg[j], De[j], scratch, &op, &npl, &om, &nmi);
                    }
                    if (rc) { O->err = rc == 2 ? 2 : 3; goto done; }
                    if (fcap < W->vcap) {  /* the arena grew: f must cover any piece */
                        double *f2 = realloc(f, sizeof(double) * W->vcap);
                        if (!f2) { O->err = 3; goto done; }
                        f = f2;
                        double *t2 = realloc(tv, sizeof(double) * W->vcap);
                        if (!t2) { O->err = 3; goto done; }
                        tv = t2;
                        fcap = W->vcap;
                    }
                    int64_t m = W->n++;
                    memcpy(W->state + m * w, W->state + p * w, (size_t)w);
                    W->state[p * w + j] += 1;
                    W->voff[p] = op;
                    W->vcnt[p] = npl;
                    W->voff[m] = om;
                    W->vcnt[m] = nmi;
                }
            }
        }
        if (defer) {  /* roll this cell back: the NumPy path decides it exactly */
            O->ne = ne0;
            __atomic_sub_fetch(counter, splits, __ATOMIC_RELAXED);
            if (out_deferred(O, c)) { O->err = 3; goto done; }
            continue;
        }
        for (int64_t p = 0; p < W->n; p++) {
            int8_t *st = W->state + p * w;
            for (int j = 0; j < w; j++) st[j] += S.base[j];
        }
        /* the pieces of this cell to the output */
        int64_t tvn = 0;
        for (int64_t p = 0; p < W->n; p++) tvn += W->vcnt[p];
        if (out_pieces(O, O->n + W->n, w, nd) || out_verts(O, O->nv + tvn, d, nd)) { O->err = 3; goto done; }
        for (int64_t p = 0; p < W->n; p++) {
            int64_t o = O->n++;
            int nv = W->vcnt[p];
            O->voff[o] = O->nv;
            O->vcnt[o] = nv;
            O->row[o] = r;
            if (nv > O->kmax) O->kmax = nv;
            memcpy(O->state + o * w, W->state + p * w, (size_t)w);
            memcpy(O->x + O->nv * d, W->x + W->voff[p] * d, sizeof(double) * nv * d);
            memcpy(O->dv + O->nv, W->dv + W->voff[p], sizeof(double) * nv);
            if (nd) {
                memcpy(O->inc + O->nv, W->inc + W->voff[p], sizeof(uint64_t) * nv);
                memcpy(O->flab + o * F, W->flab + p * F, sizeof(int32_t) * F);
            } else {
                memcpy(O->lab + O->nv, W->lab + W->voff[p], sizeof(int32_t) * nv);
            }
            O->nv += nv;
        }
    }
done:
    free(f);
    free(tv);
    free(g);
    free(scratch);
    free(Gr); free(er); free(dgr); free(der);
    free(fl_tmp);
    free(W->voff); free(W->vcnt); free(W->state); free(W->flab);
    free(W->x); free(W->dv); free(W->vi); free(W->lab); free(W->inc);
    free(W->ei); free(W->ej); free(W->ecm); free(W->cls); free(W->xn); free(W->dn); free(W->vn);
    free(S.fv); free(S.ev); free(S.ta); free(S.tb); free(S.tc); free(S.tt); free(S.up); free(S.dn); free(S.un); free(S.cross);
    free(S.base);
    return O;
}

void pw_free(void *h)
{
    Out *O = h;
    if (!O) return;
    free(O->voff); free(O->vcnt); free(O->row); free(O->state); free(O->flab);
    free(O->x); free(O->dv); free(O->lab); free(O->inc);
    free(O->ev_row); free(O->ev_unit); free(O->ev_q);
    free(O->deferred);
    free(O);
}

/* sizes[0..5] = pieces, largest vertex count, events, error, vertices, deferred cells */
void pw_sizes(void *h, int64_t *sizes)
{
    Out *O = h;
    sizes[0] = O->n;
    sizes[1] = O->kmax;
    sizes[2] = O->ne;
    sizes[3] = O->err;
    sizes[4] = O->nv;
    sizes[5] = O->nd_;
}

/* copies the pieces, in ragged form (vertices of piece after piece), into the caller's arrays: x (V, d),
 * n (N,), lab (V,) or inc (V,) and flab (N, 64), rows (N,), states (N, w), events; frees the handle. New
 * labels (NEWBASE + i) become label_base + i: the ids the caller gives this call's events. */
void pw_fetch(void *h, int d, int w, int64_t label_base, double *x, double *dv, int64_t *n, int32_t *lab,
              uint64_t *inc, int32_t *flab, int64_t *row, int8_t *state, int64_t *ev_row, int32_t *ev_unit,
              int8_t *ev_q, int64_t *deferred)
{
    Out *O = h;
    int32_t shift = (int32_t)(label_base - NEWBASE);  /* new labels NEWBASE + i become label_base + i */
    memcpy(x, O->x, sizeof(double) * O->nv * d);
    memcpy(dv, O->dv, sizeof(double) * O->nv);
    memcpy(deferred, O->deferred, sizeof(int64_t) * O->nd_);
    if (O->nd) {
        memcpy(inc, O->inc, sizeof(uint64_t) * O->nv);
        for (int64_t i = 0; i < O->n * F; i++) {
            int32_t v = O->flab[i];
            flab[i] = v >= NEWBASE ? v + shift : v;
        }
    } else {
        for (int64_t i = 0; i < O->nv; i++) {
            int32_t v = O->lab[i];
            lab[i] = v >= NEWBASE ? v + shift : v;
        }
    }
    for (int64_t p = 0; p < O->n; p++) n[p] = O->vcnt[p];
    memcpy(row, O->row, sizeof(int64_t) * O->n);
    if (w > 0) memcpy(state, O->state, (size_t)O->n * w);
    memcpy(ev_row, O->ev_row, sizeof(int64_t) * O->ne);
    memcpy(ev_unit, O->ev_unit, sizeof(int32_t) * O->ne);
    memcpy(ev_q, O->ev_q, (size_t)O->ne);
    pw_free(h);
}

/* ragged cells (x (V, d), n (C,), voff (C,), per-vertex values pv (V,) of elem bytes, error bounds dv (V,))
 * into padded arrays X (C, K, d), P (C, K), D (C, K) (the caller fills X, D with 0 and P with the pad value
 * beforehand) */
void pw_pad(int64_t nc, int K, int d, const double *x, const int64_t *n, const int64_t *voff, int elem,
            const void *pv, const double *dv, double *X, void *P, double *D)
{
    for (int64_t c = 0; c < nc; c++) {
        memcpy(X + c * (int64_t)K * d, x + voff[c] * d, sizeof(double) * n[c] * d);
        memcpy((char *)P + c * (int64_t)K * elem, (const char *)pv + voff[c] * elem, (size_t)(n[c] * elem));
        memcpy(D + c * (int64_t)K, dv + voff[c], sizeof(double) * n[c]);
    }
}

/* the output map of an elementwise stage on a block of cells: M (B, d, w) = G[a] * slope, m (B, w) =
 * E[a] * slope + const, with slope/const (nq, w) of each cell's state (int8) per unit; the expressions of
 * _engine._StageMap._h */
void pw_hmap(int64_t B, int d, int w, const int64_t *a, const int8_t *state, const double *G, const double *E,
             const double *slope, const double *cnst, double *M, double *m)
{
    for (int64_t c = 0; c < B; c++) {
        const double *g = G + a[c] * (int64_t)d * w, *e = E + a[c] * (int64_t)w;
        const int8_t *s = state + c * (int64_t)w;
        double *Mc = M + c * (int64_t)d * w, *mc = m + c * (int64_t)w;
        for (int i = 0; i < d; i++)
            for (int j = 0; j < w; j++) Mc[i * w + j] = g[i * w + j] * slope[s[j] * w + j];
        for (int j = 0; j < w; j++) mc[j] = e[j] * slope[s[j] * w + j] + cnst[s[j] * w + j];
    }
}

/* a stage's output map on rows of cells: the base of the row's stage-start cell (B (P, d, m), Be (P, m): the
 * fixed units' terms) plus the terms of the varying units: for row r (stage-end cell c = cell[r]),
 * stage-start row a = anc[c], and each unit j of units[indptr[a] .. indptr[a+1]) whose slope or constant
 * is not 0:
 *   g[r, i, :] += (G[a, i, j] * slope) * A[j, :],   e[r, :] += (E[a, j] * slope + const) * A[j, :]
 * in the order of the units (only additions of the product's own terms: no residue where it is 0); with
 * s (not NULL): the term scale, s[r] = Bs[a] + sum |G[a, i, j] * slope| * |A[j, :]|. */
void pw_extras(int64_t n, int d, int w, int m, const int64_t *cell, const int64_t *anc, const int8_t *state,
               const int64_t *indptr, const int64_t *units, const double *G, const double *E, const double *slope,
               const double *cnst, const double *A, const double *B, const double *Be, double *g, double *e,
               const double *absA, const double *Bs, double *s)
{
    for (int64_t r = 0; r < n; r++) {
        int64_t c = cell[r];
        int64_t a = anc[c];
        memcpy(g + r * d * (int64_t)m, B + a * d * (int64_t)m, sizeof(double) * d * m);
        memcpy(e + r * (int64_t)m, Be + a * (int64_t)m, sizeof(double) * m);
        if (s) memcpy(s + r * d * (int64_t)m, Bs + a * d * (int64_t)m, sizeof(double) * d * m);
        for (int64_t t = indptr[a]; t < indptr[a + 1]; t++) {
            int64_t j = units[t];
            int st = state[c * (int64_t)w + j];
            double sl = slope[st * (int64_t)w + j], k = cnst[st * (int64_t)w + j];
            if (sl == 0.0 && k == 0.0) continue;
            const double *Ar = A + j * (int64_t)m;
            for (int i = 0; i < d; i++) {
                double coef = G[(a * d + i) * (int64_t)w + j] * sl;
                double *gr = g + (r * d + i) * (int64_t)m;
                for (int q = 0; q < m; q++) gr[q] += coef * Ar[q];
                if (s) {
                    double ac = fabs(coef);
                    const double *aAr = absA + j * (int64_t)m;
                    double *sr = s + (r * d + i) * (int64_t)m;
                    for (int q = 0; q < m; q++) sr[q] += ac * aAr[q];
                }
            }
            double ce = E[a * (int64_t)w + j] * sl + k;
            double *er = e + r * (int64_t)m;
            for (int q = 0; q < m; q++) er[q] += ce * Ar[q];
        }
    }
}

/* vary (P, w) |= the units whose state in stage-end cell c differs from its stage-start cell's reference
 * cell ref[anc[c]] (vary zeroed by the caller) */
void pw_vary(int64_t C, int w, const int64_t *anc, const int8_t *state, const int64_t *ref, uint8_t *vary)
{
    for (int64_t c = 0; c < C; c++) {
        int64_t a = anc[c];
        const int8_t *s = state + c * (int64_t)w, *s0 = state + ref[a] * (int64_t)w;
        uint8_t *v = vary + a * (int64_t)w;
        for (int j = 0; j < w; j++) v[j] |= (uint8_t)(s[j] != s0[j]);
    }
}

/* the fixed units' terms of a stage's output map into few outputs (m small: no GEMM, no per-cell map
 * materialised): for each stage-start row p, in unit order, the units whose piece (s[p, j]) has a slope
 * or constant that is not 0:
 *   B[p, i, :] += (G[p, i, j] * slope) * A[j, :],  Be[p, :] += (E[p, j] * slope + const) * A[j, :],
 *   Bs[p, i, :] += |G[p, i, j] * slope| * |A[j, :]|   (Bs, absA may be NULL)
 * B, Be, Bs zeroed by the caller. */
void pw_base(int64_t P, int d, int w, int m, const double *G, const double *E, const int8_t *s, const double *slope,
             const double *cnst, const double *A, const double *absA, double *B, double *Be, double *Bs)
{
    for (int64_t p = 0; p < P; p++) {
        for (int j = 0; j < w; j++) {
            int st = s[p * (int64_t)w + j];
            double sl = slope[st * (int64_t)w + j], k = cnst[st * (int64_t)w + j];
            if (sl == 0.0 && k == 0.0) continue;
            const double *Ar = A + j * (int64_t)m;
            for (int i = 0; i < d; i++) {
                double coef = G[(p * d + i) * (int64_t)w + j] * sl;
                double *br = B + (p * d + i) * (int64_t)m;
                for (int q = 0; q < m; q++) br[q] += coef * Ar[q];
                if (Bs) {
                    double ac = fabs(coef);
                    const double *aAr = absA + j * (int64_t)m;
                    double *sr = Bs + (p * d + i) * (int64_t)m;
                    for (int q = 0; q < m; q++) sr[q] += ac * aAr[q];
                }
            }
            double ce = E[p * (int64_t)w + j] * sl + k;
            double *er = Be + p * (int64_t)m;
            for (int q = 0; q < m; q++) er[q] += ce * Ar[q];
        }
    }
}

/* The whole-cell winners of a max stage (the C form of _engine._max_winners: the same rule, expressions and
 * error bounds). Cells c0..c1-1 of the padded geometry V (C, K, d), n (C,), D (C, K) with vinf (C, K) the
 * vertices' max norms; cell c's pieces are row rows[c] of G (P, d, m), E (P, m), with coefficient bounds
 * Dg, De (C, m) per cell; groups (w, k) the pieces of each unit. Known values (flat NULL: none): flat (C, m)
 * marks a piece constant on the cell (its value cval (C, m)); punit (m,) is the previous stage's unit of each
 * piece and, where vu is not NULL, vu (C, K, S) the units whose boundary a vertex lies on (-1: none), bpv
 * (C, K, S) the activation's value there. out (C, w): the index in its group of the piece whose region is the
 * whole cell, or -1 (undecided signs, or a split). Returns 0, or 3 when out of memory. */
int pw_max_winners(int64_t c0, int64_t c1, int64_t K, int d, int64_t m, int64_t w, int k, const double *V,
                   const int64_t *n, const double *D, const double *vinf, const int64_t *rows, const double *G,
                   const double *E, const double *Dg, const double *De, const int64_t *groups,
                   const uint8_t *flat, const double *cval, const int64_t *punit, int S, const int64_t *vu,
                   const double *bpv, int64_t *out)
{
    double g1 = gamma_n(d + 1), g3 = gamma_n(d + 3);
    uint8_t *kn = malloc((size_t)(K * k + k) + 1);
    double *kv = malloc(sizeof(double) * (size_t)(K * k + 1));
    double *g = malloc(sizeof(double) * (size_t)(d + 1));
    if (!kn || !kv || !g) { free(kn); free(kv); free(g); return 3; }
    uint8_t *ok = kn + K * k;
    for (int64_t c = c0; c < c1; c++) {
        const int64_t r = rows[c], nc = n[c];
        const double *Vc = V + c * K * d, *Dc = D + c * K, *vic = vinf + c * K;
        const double *Gr = G + r * (int64_t)d * m, *Er = E + r * m;
        const double *Dgc = Dg + c * m, *Dec = De + c * m;
        for (int64_t u = 0; u < w; u++) {
            const int64_t *gi = groups + u * k;
            if (flat) {
                for (int t = 0; t < k; t++) {
                    const int64_t p = gi[t];
                    for (int64_t v = 0; v < nc; v++) {
                        uint8_t *kk = kn + v * k + t;
                        *kk = 0;
                        if (flat[c * m + p]) { *kk = 1; kv[v * k + t] = cval[c * m + p]; continue; }
                        if (!vu) continue;
                        for (int s = 0; s < S; s++) {
                            const int64_t at = (c * K + v) * S + s;
                            if (vu[at] == punit[p]) { *kk = 1; kv[v * k + t] = bpv[at]; break; }
                        }
                    }
                }
            }
            for (int t = 0; t < k; t++) ok[t] = 1;
            for (int i = 0; i < k; i++) {
                for (int j = i + 1; j < k; j++) {
                    if (!ok[i] && !ok[j]) continue;
                    const int64_t pi = gi[i], pj = gi[j];
                    double absg = 0.0;
                    for (int x = 0; x < d; x++) {
                        g[x] = Gr[x * m + pi] - Gr[x * m + pj];
                        absg += fabs(g[x]);
                    }
                    const double e = Er[pi] - Er[pj];
                    const double dg = (Dgc[pi] + Dgc[pj]) + 2.0 * UROUND * absg;
                    const double de = (Dec[pi] + Dec[pj]) + 2.0 * UROUND * fabs(e);
                    const double A = (g3 * fabs(e) + de) * SAFETY, B = (g1 * absg + dg) * SAFETY;
                    const double Cc = (absg + dg) * SAFETY;
                    int big = 0, small = 0, und = 0;
                    for (int64_t v = 0; v < nc && !und; v++) {
                        if (flat && kn[v * k + i] && kn[v * k + j]) {
                            const double a = kv[v * k + i], b = kv[v * k + j];
                            big |= a > b;
                            small |= a < b;
                            continue;
                        }
                        const double *xv = Vc + v * d;
                        double f = e;
                        for (int x = 0; x < d; x++) f += xv[x] * g[x];
                        const double tol = (A + B * vic[v]) + Cc * Dc[v];
                        if (f > tol) big = 1;
                        else if (f < -tol) small = 1;
                        else if (!(tol == 0.0 && f == 0.0)) und = 1;
                    }
                    if (und) { ok[i] = ok[j] = 0; continue; }
                    if (small) ok[i] = 0;  /* i >= j on the cell (a tie goes to i, the lower index) */
                    if (big || !small) ok[j] = 0;  /* j >= i on the cell, and j > i somewhere */
                }
            }
            int64_t win = -1;
            for (int t = 0; t < k; t++)
                if (ok[t]) { win = t; break; }
            out[c * w + u] = win;
        }
    }
    free(kn);
    free(kv);
    free(g);
    return 0;
}
