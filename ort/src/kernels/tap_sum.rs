//! [`TAP_SUM`]: every output's six tap-table rows read, weighted, summed
//! and rectified in one pass, instead of gathering the rows into a buffer
//! that a batched `MatMul`, a `Concat` and a `Relu` read again.
use ort::operator::ComputeContext;
use tcanet_models::onnx::{TAP_SUM, TAP_SUM_ROWS};

use super::{
    count_mismatch, gather_position, input, mul_add, output, product_fits, run_vectorized, sizes,
    to_ort, Arg, Function, TapElement, Vectorized,
};

/// Outputs one parallel task sums (large enough to amortise the hand-off).
const OUTPUTS_PER_TASK: usize = 64;

/// Why a [`TAP_SUM`] call's inputs were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TapSumError {
    /// An input has the wrong rank or sizes that do not fit together.
    #[error("TapSum: {0}")]
    Shape(String),
    /// A row index outside the table (as `GatherND` refuses it).
    #[error("TapSum: row index {index} is outside a table of {rows} rows")]
    RowOutOfRange {
        /// The index as given.
        index: i64,
        /// The table's rows per batch.
        rows: usize,
    },
}

/// The shapes of one [`TAP_SUM`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapSumDims {
    /// Batch size B.
    pub batch: usize,
    /// Channel groups g of the table.
    pub groups: usize,
    /// Table rows per batch, R.
    pub rows: usize,
    /// Channels per row and group, C/g.
    pub group_channels: usize,
    /// Row indices per batch, M (a multiple of 6).
    pub reads: usize,
}

impl TapSumDims {
    /// From the table's `[B, g, R, C/g]` and the indices' `[B, M, 1]`
    /// shapes.
    pub fn new(table: &[i64], rows: &[i64]) -> Result<Self, TapSumError> {
        let [b, g, r, cg] = sizes("table", table, "[B, g, R, C/g]").map_err(shape_err)?;
        let m = match sizes("rows", rows, "[B, M, 1]").map_err(shape_err)? {
            [rb, m, 1] if rb == b => m,
            _ => {
                return Err(shape_err(format!(
                    "rows have shape {rows:?}, not [{b}, M, 1]"
                )))
            }
        };
        let dims = Self {
            batch: b,
            groups: g,
            rows: r,
            group_channels: cg,
            reads: m,
        };
        if !product_fits(&[b, m, g, cg]) {
            return Err(shape_err(format!(
                "table {table:?} and rows {rows:?} are too large"
            )));
        }
        if !dims.reads.is_multiple_of(TAP_SUM_ROWS) {
            return Err(shape_err(format!(
                "{m} rows per batch is not a multiple of {TAP_SUM_ROWS}"
            )));
        }
        Ok(dims)
    }

    /// Outputs K = B·M/6.
    pub fn outputs(&self) -> usize {
        self.batch * self.reads / TAP_SUM_ROWS
    }

    /// Channels per output, C.
    pub fn channels(&self) -> usize {
        self.groups * self.group_channels
    }

    /// Values of one group of one batch's table, R·C/g.
    fn group_stride(&self) -> usize {
        self.rows * self.group_channels
    }
}

fn shape_err(message: String) -> TapSumError {
    TapSumError::Shape(message)
}

/// The output shape `shape` asks for, its one −1 resolved so that it holds
/// `len` values (`Reshape`'s rule, without its 0 = copy).
pub fn resolve_shape(shape: &[i64], len: usize) -> Result<Vec<i64>, TapSumError> {
    let bad = || shape_err(format!("output shape {shape:?} cannot hold {len} values"));
    let known = shape
        .iter()
        .filter(|&&d| d != -1)
        .try_fold(1i64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(bad)?;
    let free = shape.iter().filter(|&&d| d == -1).count();
    if shape.iter().any(|&d| d < -1 || d == 0) || free > 1 || known <= 0 {
        return Err(bad());
    }
    let len = i64::try_from(len).map_err(|_| bad())?;
    if len % known != 0 || (free == 0 && known != len) {
        return Err(bad());
    }
    Ok(shape
        .iter()
        .map(|&d| if d == -1 { len / known } else { d })
        .collect())
}

/// The table offset of every row read, in its batch's first group:
/// `(b·g·R + row)·C/g`, negative rows counted from the end.
fn row_offsets(dims: &TapSumDims, rows: &[i64]) -> Result<Vec<usize>, TapSumError> {
    rows.iter()
        .enumerate()
        .map(|(i, &index)| {
            let row = gather_position(index, dims.rows).ok_or(TapSumError::RowOutOfRange {
                index,
                rows: dims.rows,
            })?;
            let batch = i / dims.reads;
            Ok((batch * dims.groups * dims.rows + row) * dims.group_channels)
        })
        .collect()
}

/// The [`TAP_SUM`] computation on one thread, for tests and tools: `out`
/// (`K·C` values) from `table` (`B·g·R·C/g`), `rows` (`B·M`) and
/// `weights` (`K·6`).
pub fn tap_sum<T: TapElement>(
    dims: &TapSumDims,
    table: &[T],
    rows: &[i64],
    weights: &[T],
    out: &mut [T],
) -> Result<(), TapSumError> {
    check_lengths(dims, table, rows, weights, out.len())?;
    let offsets = row_offsets(dims, rows)?;
    sum_outputs(table, dims, &offsets, weights, out);
    Ok(())
}

fn check_lengths<T>(
    dims: &TapSumDims,
    table: &[T],
    rows: &[i64],
    weights: &[T],
    out: usize,
) -> Result<(), TapSumError> {
    let k = dims.outputs();
    let expect = [
        (
            "table",
            dims.batch * dims.groups * dims.group_stride(),
            table.len(),
        ),
        ("rows", dims.batch * dims.reads, rows.len()),
        ("weights", k * TAP_SUM_ROWS, weights.len()),
        ("output", k * dims.channels(), out),
    ];
    count_mismatch(&expect).map_or(Ok(()), |m| Err(shape_err(m)))
}

/// Every output of `out` (rows of C values): the weighted sum of its six
/// table rows (each read group by group), rectified (NaN stays NaN, as
/// `Relu`).
fn sum_outputs<T: TapElement>(
    table: &[T],
    dims: &TapSumDims,
    offsets: &[usize],
    weights: &[T],
    out: &mut [T],
) {
    run_vectorized(SumOutputs {
        table,
        dims,
        offsets,
        weights,
        out,
    })
}

/// The arguments of [`sum_outputs`].
struct SumOutputs<'a, T> {
    table: &'a [T],
    dims: &'a TapSumDims,
    offsets: &'a [usize],
    weights: &'a [T],
    out: &'a mut [T],
}

impl<T: TapElement> Vectorized for SumOutputs<'_, T> {
    #[inline(always)]
    fn run<const FUSED: bool>(self) {
        let (c, stride) = (self.dims.group_channels, self.dims.group_stride());
        if c == 0 || self.dims.groups == 0 {
            return; // no channels: the output is empty
        }
        let per_output = self
            .offsets
            .chunks_exact(TAP_SUM_ROWS)
            .zip(self.weights.chunks_exact(TAP_SUM_ROWS));
        for (y, (at, w)) in self
            .out
            .chunks_exact_mut(self.dims.channels())
            .zip(per_output)
        {
            let w: [f32; TAP_SUM_ROWS] = std::array::from_fn(|i| w[i].to_f32());
            for (g, y) in y.chunks_exact_mut(c).enumerate() {
                let row = |i: usize| &self.table[at[i] + g * stride..at[i] + g * stride + c];
                sum_six::<T, FUSED>(y, [row(0), row(1), row(2), row(3), row(4), row(5)], &w);
            }
        }
    }
}

/// `y` = ReLU(Σ_i w_i · r_i), element by element.
#[inline(always)]
fn sum_six<T: TapElement, const FUSED: bool>(
    y: &mut [T],
    rows: [&[T]; TAP_SUM_ROWS],
    w: &[f32; TAP_SUM_ROWS],
) {
    let c = y.len();
    let [r0, r1, r2, r3, r4, r5] = rows.map(|r| &r[..c]);
    for i in 0..c {
        let mut s = w[0] * r0[i].to_f32();
        s = mul_add::<FUSED>(w[1], r1[i].to_f32(), s);
        s = mul_add::<FUSED>(w[2], r2[i].to_f32(), s);
        s = mul_add::<FUSED>(w[3], r3[i].to_f32(), s);
        s = mul_add::<FUSED>(w[4], r4[i].to_f32(), s);
        s = mul_add::<FUSED>(w[5], r5[i].to_f32(), s);
        y[i] = T::from_f32(if s < 0.0 { 0.0 } else { s });
    }
}

/// [`TAP_SUM`]'s kernel.
pub(super) struct TapSum;

impl<T: TapElement> Function<T> for TapSum {
    const NAME: &'static str = TAP_SUM;
    const INPUTS: &'static [Arg] = &[Arg::Elements, Arg::Int64, Arg::Elements, Arg::Int64];

    fn compute(ctx: &ComputeContext) -> ort::Result<()> {
        let input = |i: usize| input(ctx, TAP_SUM, i);
        let (table, rows, weights, shape) = (input(0)?, input(1)?, input(2)?, input(3)?);
        let (table_shape, table) = table.try_extract_tensor::<T>()?;
        let (rows_shape, rows) = rows.try_extract_tensor::<i64>()?;
        let (_, weights) = weights.try_extract_tensor::<T>()?;
        let (_, shape) = shape.try_extract_tensor::<i64>()?;
        let dims = TapSumDims::new(table_shape, rows_shape).map_err(to_ort)?;
        let len = dims.outputs() * dims.channels();
        let out_shape = resolve_shape(shape, len).map_err(to_ort)?;
        check_lengths(&dims, table, rows, weights, len).map_err(to_ort)?;
        let offsets = row_offsets(&dims, rows).map_err(to_ort)?;
        let shared = output::<T>(ctx, TAP_SUM, out_shape, len)?;
        let c = dims.channels();
        let tasks = dims.outputs().div_ceil(OUTPUTS_PER_TASK);
        ctx.par_for(tasks, 0, |task| {
            let first = task * OUTPUTS_PER_TASK;
            let last = (first + OUTPUTS_PER_TASK).min(dims.outputs());
            let six = TAP_SUM_ROWS;
            // SAFETY: tasks cover disjoint output ranges within `len`.
            let y = unsafe { shared.outputs(first, last, c) };
            sum_outputs(
                table,
                &dims,
                &offsets[first * six..last * six],
                &weights[first * six..last * six],
                y,
            );
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tcanet_testkit::pseudo_random;

    /// The same sums in f64, from the table laid out rows-major (`[B, R,
    /// C]`, groups side by side), as the standard-op body reads it.
    fn reference(dims: &TapSumDims, table: &[f32], rows: &[i64], weights: &[f32]) -> Vec<f32> {
        let (r, g, cg) = (dims.rows, dims.groups, dims.group_channels);
        let c = g * cg;
        // [B, g, R, C/g] → [B, R, g·C/g]
        let mut rows_major = vec![0.0; table.len()];
        for (at, &v) in table.iter().enumerate() {
            let (i, row, gi, b) = (at % cg, at / cg % r, at / (cg * r) % g, at / (cg * r * g));
            rows_major[((b * r + row) * g + gi) * cg + i] = v;
        }
        let mut out = Vec::new();
        for k in 0..dims.outputs() {
            for ch in 0..c {
                let mut s = 0.0f64;
                for i in 0..6 {
                    let flat = k * 6 + i;
                    let b = flat / dims.reads;
                    let row = rows[flat].rem_euclid(r as i64) as usize;
                    s += weights[flat] as f64 * rows_major[(b * r + row) * c + ch] as f64;
                }
                out.push(s.max(0.0) as f32);
            }
        }
        out
    }

    #[test]
    fn sums_match_a_gather_then_sum_in_f64() {
        let dims = TapSumDims {
            batch: 2,
            groups: 3,
            rows: 7,
            group_channels: 5,
            reads: 18,
        };
        let table = pseudo_random(2 * 3 * 7 * 5, 1);
        let rows: Vec<i64> = (0..36).map(|i| (i * 5 % 14) - 7).collect();
        let weights = pseudo_random(36, 2);
        let mut out = vec![f32::NAN; 6 * 15];
        tap_sum(&dims, &table, &rows, &weights, &mut out).unwrap();
        let want = reference(&dims, &table, &rows, &weights);
        assert!(want.contains(&0.0) && want.iter().any(|&v| v > 0.0));
        for (got, want) in out.iter().zip(&want) {
            assert!((got - want).abs() <= 1e-6, "{got} vs {want}");
        }
    }

    /// Both forms of the loops, unfused and fused (what the AVX2 + FMA
    /// copy and AArch64 run), give the f64 sums, whichever this CPU would
    /// pick (19 channels: vector bodies and scalar tails).
    #[test]
    fn fused_and_unfused_loops_match_the_f64_sums() {
        let dims = TapSumDims::new(&[1, 2, 9, 19], &[1, 24, 1]).unwrap();
        let table = pseudo_random(2 * 9 * 19, 3);
        let rows: Vec<i64> = (0..24).map(|i| i * 7 % 9).collect();
        let weights = pseudo_random(24, 4);
        let offsets = row_offsets(&dims, &rows).unwrap();
        let want = reference(&dims, &table, &rows, &weights);
        for fused in [false, true] {
            let mut out = vec![f32::NAN; 4 * 38];
            let work = SumOutputs {
                table: &table,
                dims: &dims,
                offsets: &offsets,
                weights: &weights,
                out: &mut out,
            };
            if fused {
                work.run::<true>()
            } else {
                work.run::<false>()
            }
            for (got, want) in out.iter().zip(&want) {
                assert!((got - want).abs() <= 1e-6, "fused {fused}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn rows_outside_the_table_and_bad_shapes_are_refused() {
        let dims = TapSumDims::new(&[1, 1, 4, 2], &[1, 6, 1]).unwrap();
        let table = vec![1.0; 8];
        let mut out = vec![0.0; 2];
        for bad in [4, -5] {
            let rows = [0, 1, 2, 3, bad, 0];
            let err = tap_sum(&dims, &table, &rows, &[1.0; 6], &mut out).unwrap_err();
            assert_eq!(
                err,
                TapSumError::RowOutOfRange {
                    index: bad,
                    rows: 4
                }
            );
        }
        let err = tap_sum(&dims, &table, &[0; 6], &[1.0; 5], &mut out).unwrap_err();
        assert!(
            err.to_string().contains("weights holds 5 values, not 6"),
            "{err}"
        );
        assert!(TapSumDims::new(&[1, 1, 4, 2], &[1, 5, 1]).is_err());
        assert!(TapSumDims::new(&[2, 1, 4, 2], &[1, 6, 1]).is_err());
        assert!(TapSumDims::new(&[1, 4, 2], &[1, 6, 1]).is_err());
        let huge = 1i64 << 40;
        assert!(TapSumDims::new(&[1, huge, huge, 2], &[1, 6, 1]).is_err());
        assert!(TapSumDims::new(&[1, huge, 1, huge], &[1, huge * 6, 1]).is_err());
    }

    /// Zero channels (a hostile but valid shape) give an empty output, not
    /// a panic.
    #[test]
    fn zero_channels_give_an_empty_output() {
        for table in [[1, 1, 4, 0], [1, 0, 4, 2]] {
            let dims = TapSumDims::new(&table, &[1, 6, 1]).unwrap();
            assert_eq!(dims.channels(), 0);
            tap_sum::<f32>(&dims, &[], &[0, 1, 2, 3, 0, 1], &[1.0; 6], &mut []).unwrap();
        }
    }

    #[test]
    fn output_shapes_resolve_like_reshape() {
        assert_eq!(resolve_shape(&[-1, 1, 4, 8], 64).unwrap(), [2, 1, 4, 8]);
        assert_eq!(resolve_shape(&[2, 32], 64).unwrap(), [2, 32]);
        let huge = 1i64 << 40;
        for bad in [
            &[-1, -1][..],
            &[3, -1],
            &[0, -1],
            &[2, 16],
            &[-2, 32],
            &[huge, huge, -1],
        ] {
            assert!(resolve_shape(bad, 64).is_err(), "{bad:?}");
        }
    }
}
