//! [`LOCAL_ATTENTION`]: each query's scores over its w window keys, their
//! softmax and the weighted sum of the values in one pass over the query's
//! rows, instead of gathering every window's keys and values into buffers
//! w times the size of the keys (the standard-op body's `Gather`, `Mul`,
//! `ReduceSum`, `Add`, `Softmax` and batched `MatMul`).
use ort::operator::ComputeContext;
use tcanet_models::onnx::LOCAL_ATTENTION;

use super::{
    count_mismatch, gather_position, input, mul_add, output, run_vectorized, sizes, to_ort, Arg,
    Function, TapElement, Vectorized,
};

/// Queries one parallel task attends (large enough to amortise the hand-off).
const QUERIES_PER_TASK: usize = 128;

/// Why a [`LOCAL_ATTENTION`] call's inputs were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalAttentionError {
    /// An input has the wrong rank or sizes that do not fit together.
    #[error("LocalAttention: {0}")]
    Shape(String),
    /// A key position outside the sequence (as `Gather` refuses it).
    #[error("LocalAttention: key position {index} is outside a sequence of {steps} steps")]
    KeyOutOfRange {
        /// The position as given.
        index: i64,
        /// The sequence's steps, T.
        steps: usize,
    },
}

/// The shapes of one [`LOCAL_ATTENTION`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalAttentionDims {
    /// Batch size × heads, B·heads.
    pub batch_heads: usize,
    /// Sequence steps, T.
    pub steps: usize,
    /// Keys per query, w.
    pub window: usize,
    /// Channels per head, hd.
    pub head_dim: usize,
}

impl LocalAttentionDims {
    /// From the shapes of query, key and value (`[B, heads, T, hd]`, all
    /// equal) and of the window's index and mask (`[T, w]`, equal).
    pub fn new(
        query: &[i64],
        key: &[i64],
        value: &[i64],
        index: &[i64],
        mask: &[i64],
    ) -> Result<Self, LocalAttentionError> {
        let [b, h, t, d] = sizes("query", query, "[B, heads, T, hd]").map_err(shape_err)?;
        for (what, shape) in [("key", key), ("value", value)] {
            if shape != query {
                return Err(shape_err(format!(
                    "{what} has shape {shape:?}, not the query's {query:?}"
                )));
            }
        }
        let form = format!("[{t}, w] with w ≥ 1");
        let w = match sizes("window_index", index, &form).map_err(shape_err)? {
            [it, w] if it == t && w > 0 => w,
            _ => {
                return Err(shape_err(format!(
                    "window_index has shape {index:?}, not {form}"
                )))
            }
        };
        if mask != index {
            return Err(shape_err(format!(
                "window_mask has shape {mask:?}, not the index's {index:?}"
            )));
        }
        // Both shapes' products fit ([`sizes`]), so B·heads does too.
        Ok(Self {
            batch_heads: b * h,
            steps: t,
            window: w,
            head_dim: d,
        })
    }

    /// Queries over all batches and heads, B·heads·T.
    pub fn queries(&self) -> usize {
        self.batch_heads * self.steps
    }
}

fn shape_err(message: String) -> LocalAttentionError {
    LocalAttentionError::Shape(message)
}

/// Every window position as a step in `0..T` (negative ones counted from
/// the end).
fn key_steps(dims: &LocalAttentionDims, index: &[i64]) -> Result<Vec<usize>, LocalAttentionError> {
    index
        .iter()
        .map(|&i| {
            gather_position(i, dims.steps).ok_or(LocalAttentionError::KeyOutOfRange {
                index: i,
                steps: dims.steps,
            })
        })
        .collect()
}

/// The inputs of one call, checked against its dims.
struct Inputs<'a, T> {
    dims: LocalAttentionDims,
    query: &'a [T],
    key: &'a [T],
    value: &'a [T],
    /// `[T, w]` key steps, resolved ([`key_steps`]).
    keys: &'a [usize],
    mask: &'a [T],
}

fn check_lengths<T>(
    dims: &LocalAttentionDims,
    [query, key, value, mask]: [&[T]; 4],
    index: &[i64],
    out: usize,
) -> Result<(), LocalAttentionError> {
    let rows = dims.queries() * dims.head_dim;
    let window = dims.steps * dims.window;
    let expect = [
        ("query", rows, query.len()),
        ("key", rows, key.len()),
        ("value", rows, value.len()),
        ("window_index", window, index.len()),
        ("window_mask", window, mask.len()),
        ("output", rows, out),
    ];
    count_mismatch(&expect).map_or(Ok(()), |m| Err(shape_err(m)))
}

/// The [`LOCAL_ATTENTION`] computation on one thread, for tests and tools:
/// `out` (`B·heads·T·hd` values) from query, key and value (each
/// `B·heads·T·hd`), `index` and `mask` (each `T·w`).
pub fn local_attention<T: TapElement>(
    dims: &LocalAttentionDims,
    query: &[T],
    key: &[T],
    value: &[T],
    index: &[i64],
    mask: &[T],
    out: &mut [T],
) -> Result<(), LocalAttentionError> {
    check_lengths(dims, [query, key, value, mask], index, out.len())?;
    let keys = key_steps(dims, index)?;
    let inputs = Inputs {
        dims: *dims,
        query,
        key,
        value,
        keys: &keys,
        mask,
    };
    attend(&inputs, 0, out);
    Ok(())
}

/// Queries `first..` (as many as `out` has rows of hd values).
fn attend<T: TapElement>(x: &Inputs<T>, first: usize, out: &mut [T]) {
    run_vectorized(Attend { x, first, out })
}

/// The arguments of [`attend`].
struct Attend<'a, T> {
    x: &'a Inputs<'a, T>,
    first: usize,
    out: &'a mut [T],
}

impl<T: TapElement> Vectorized for Attend<'_, T> {
    #[inline(always)]
    fn run<const FUSED: bool>(self) {
        attend_queries::<T, FUSED>(self.x, self.first, self.out)
    }
}

/// Row `at` of `hd` values of `m`.
#[inline(always)]
fn row<T>(m: &[T], at: usize, d: usize) -> &[T] {
    &m[at * d..(at + 1) * d]
}

/// The loops of [`attend`].
#[inline(always)]
fn attend_queries<T: TapElement, const FUSED: bool>(x: &Inputs<T>, first: usize, out: &mut [T]) {
    let (d, w, steps) = (x.dims.head_dim, x.dims.window, x.dims.steps);
    if d == 0 {
        return; // no channels: the output is empty
    }
    let mut scores = vec![0f32; w];
    let mut context = vec![0f32; d];
    for (i, y) in out.chunks_exact_mut(d).enumerate() {
        let query = first + i;
        let (sequence, t) = (query / steps, query % steps);
        let keys = &x.keys[t * w..(t + 1) * w];
        let mask = &x.mask[t * w..(t + 1) * w];
        let q = row(x.query, query, d);
        for ((s, &k), m) in scores.iter_mut().zip(keys).zip(mask) {
            *s = dot::<T, FUSED>(q, row(x.key, sequence * steps + k, d)) + m.to_f32();
        }
        softmax(&mut scores);
        context.fill(0.0);
        for (&p, &k) in scores.iter().zip(keys) {
            let v = row(x.value, sequence * steps + k, d);
            for (c, v) in context.iter_mut().zip(v) {
                *c = mul_add::<FUSED>(p, v.to_f32(), *c);
            }
        }
        for (y, &c) in y.iter_mut().zip(&context) {
            *y = T::from_f32(c);
        }
    }
}

/// `a · b` in float32, over 8 partial sums (so that it vectorises).
#[inline(always)]
fn dot<T: TapElement, const FUSED: bool>(a: &[T], b: &[T]) -> f32 {
    const LANES: usize = 8;
    let mut acc = [0f32; LANES];
    let (a8, b8) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(x, y)| x.to_f32() * y.to_f32())
        .sum();
    for (x, y) in a8.zip(b8) {
        for i in 0..LANES {
            acc[i] = mul_add::<FUSED>(x[i].to_f32(), y[i].to_f32(), acc[i]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `s` replaced by its softmax, as ONNX `Softmax` (all −inf gives NaN).
#[inline(always)]
fn softmax(s: &mut [f32]) {
    let max = s.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0.0;
    for v in s.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in s.iter_mut() {
        *v /= sum;
    }
}

/// [`LOCAL_ATTENTION`]'s kernel.
pub(super) struct LocalAttention;

impl<T: TapElement> Function<T> for LocalAttention {
    const NAME: &'static str = LOCAL_ATTENTION;
    const INPUTS: &'static [Arg] = &[
        Arg::Elements,
        Arg::Elements,
        Arg::Elements,
        Arg::Int64,
        Arg::Elements,
    ];

    fn compute(ctx: &ComputeContext) -> ort::Result<()> {
        let input = |i: usize| input(ctx, LOCAL_ATTENTION, i);
        let (query, key, value) = (input(0)?, input(1)?, input(2)?);
        let (index, mask) = (input(3)?, input(4)?);
        let (query_shape, query) = query.try_extract_tensor::<T>()?;
        let (key_shape, key) = key.try_extract_tensor::<T>()?;
        let (value_shape, value) = value.try_extract_tensor::<T>()?;
        let (index_shape, index) = index.try_extract_tensor::<i64>()?;
        let (mask_shape, mask) = mask.try_extract_tensor::<T>()?;
        let dims =
            LocalAttentionDims::new(query_shape, key_shape, value_shape, index_shape, mask_shape)
                .map_err(to_ort)?;
        let len = dims.queries() * dims.head_dim;
        check_lengths(&dims, [query, key, value, mask], index, len).map_err(to_ort)?;
        let keys = key_steps(&dims, index).map_err(to_ort)?;
        let shared = output::<T>(ctx, LOCAL_ATTENTION, query_shape.to_vec(), len)?;
        let inputs = Inputs {
            dims,
            query,
            key,
            value,
            keys: &keys,
            mask,
        };
        let tasks = dims.queries().div_ceil(QUERIES_PER_TASK);
        ctx.par_for(tasks, 0, |task| {
            let first = task * QUERIES_PER_TASK;
            let last = (first + QUERIES_PER_TASK).min(dims.queries());
            // SAFETY: tasks cover disjoint query ranges within `len`.
            let y = unsafe { shared.outputs(first, last, dims.head_dim) };
            attend(&inputs, first, y);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tcanet_testkit::pseudo_random;

    /// The body's computation in f64: gather the window's keys and values,
    /// scores plus mask, softmax, weighted sum.
    fn reference(
        dims: &LocalAttentionDims,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        index: &[i64],
        mask: &[f32],
    ) -> Vec<f32> {
        let (d, w, t) = (dims.head_dim, dims.window, dims.steps);
        let mut out = Vec::new();
        for query in 0..dims.queries() {
            let (seq, step) = (query / t, query % t);
            let key_row = |m: usize| seq * t + index[step * w + m].rem_euclid(t as i64) as usize;
            let scores: Vec<f64> = (0..w)
                .map(|m| {
                    let dot: f64 = (0..d)
                        .map(|c| q[query * d + c] as f64 * k[key_row(m) * d + c] as f64)
                        .sum();
                    dot + mask[step * w + m] as f64
                })
                .collect();
            let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let sum: f64 = e.iter().sum();
            for c in 0..d {
                let y: f64 = (0..w)
                    .map(|m| e[m] / sum * v[key_row(m) * d + c] as f64)
                    .sum();
                out.push(y as f32);
            }
        }
        out
    }

    #[test]
    fn attention_matches_gather_then_softmax_in_f64() {
        // 2 sequences × 3 heads, T 7, w 3, hd 11 (a tail after 8 lanes);
        // windows clamped at the edges, the repeats masked, one negative
        // position.
        let (t, w, d) = (7usize, 3usize, 11usize);
        let dims = LocalAttentionDims::new(
            &[2, 3, 7, 11],
            &[2, 3, 7, 11],
            &[2, 3, 7, 11],
            &[7, 3],
            &[7, 3],
        )
        .unwrap();
        let mut index = Vec::new();
        let mut mask = Vec::new();
        for step in 0..t as i64 {
            let keys: Vec<i64> = (-1..=1)
                .map(|o| (step + o).clamp(0, t as i64 - 1))
                .collect();
            for m in 0..w {
                let repeat = m > 0 && keys[m] == keys[m - 1];
                mask.push(if repeat { f32::NEG_INFINITY } else { 0.0 });
                index.push(if step == 3 && m == 2 {
                    keys[m] - t as i64
                } else {
                    keys[m]
                });
            }
        }
        let n = dims.queries() * d;
        let (q, k, v) = (
            pseudo_random(n, 1),
            pseudo_random(n, 2),
            pseudo_random(n, 3),
        );
        let mut out = vec![f32::NAN; n];
        local_attention(&dims, &q, &k, &v, &index, &mask, &mut out).unwrap();
        let want = reference(&dims, &q, &k, &v, &index, &mask);
        for (got, want) in out.iter().zip(&want) {
            assert!((got - want).abs() <= 2e-6, "{got} vs {want}");
        }
    }

    #[test]
    fn a_fully_masked_window_gives_nan_like_softmax() {
        let dims = LocalAttentionDims::new(
            &[1, 1, 1, 2],
            &[1, 1, 1, 2],
            &[1, 1, 1, 2],
            &[1, 2],
            &[1, 2],
        )
        .unwrap();
        let mut out = [0.0; 2];
        let inf = f32::NEG_INFINITY;
        local_attention(
            &dims,
            &[1.0, 2.0],
            &[1.0, 1.0],
            &[3.0, 4.0],
            &[0, 0],
            &[inf, inf],
            &mut out,
        )
        .unwrap();
        assert!(out.iter().all(|y| y.is_nan()), "{out:?}");
    }

    /// Zero channels per head or zero batches (hostile but valid shapes)
    /// give an empty output, not a panic.
    #[test]
    fn empty_shapes_give_an_empty_output() {
        for s in [[1i64, 1, 2, 0], [0, 1, 2, 4]] {
            let dims = LocalAttentionDims::new(&s, &s, &s, &[2, 1], &[2, 1]).unwrap();
            local_attention::<f32>(&dims, &[], &[], &[], &[0, 1], &[0.0; 2], &mut []).unwrap();
        }
    }

    #[test]
    fn keys_outside_the_sequence_and_bad_shapes_are_refused() {
        let s = [1i64, 1, 2, 1];
        let dims = LocalAttentionDims::new(&s, &s, &s, &[2, 1], &[2, 1]).unwrap();
        let x = [1.0f32, 2.0];
        let mut out = [0.0; 2];
        for bad in [2, -3] {
            let err =
                local_attention(&dims, &x, &x, &x, &[0, bad], &[0.0; 2], &mut out).unwrap_err();
            assert_eq!(
                err,
                LocalAttentionError::KeyOutOfRange {
                    index: bad,
                    steps: 2
                }
            );
        }
        let err = local_attention(&dims, &x, &x, &x, &[0, 1], &[0.0], &mut out).unwrap_err();
        assert!(
            err.to_string()
                .contains("window_mask holds 1 values, not 2"),
            "{err}"
        );
        assert!(LocalAttentionDims::new(&s, &[1, 1, 3, 1], &s, &[2, 1], &[2, 1]).is_err());
        assert!(LocalAttentionDims::new(&s, &s, &s, &[3, 1], &[3, 1]).is_err());
        assert!(LocalAttentionDims::new(&s, &s, &s, &[2, 0], &[2, 0]).is_err());
        assert!(LocalAttentionDims::new(&s, &s, &s, &[2, 1], &[2, 2]).is_err());
        assert!(
            LocalAttentionDims::new(&[1, 2, 1], &[1, 2, 1], &[1, 2, 1], &[2, 1], &[2, 1]).is_err()
        );
        let huge = 1i64 << 40;
        let h = [huge, huge, 2, 1];
        assert!(LocalAttentionDims::new(&h, &h, &h, &[2, 1], &[2, 1]).is_err());
        let neg = [1, -1, 2, 1];
        assert!(LocalAttentionDims::new(&neg, &neg, &neg, &[2, 1], &[2, 1]).is_err());
    }
}
