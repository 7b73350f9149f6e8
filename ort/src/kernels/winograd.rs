//! [`WINOGRAD_TILES`] and [`WINOGRAD_UNTILE_RELU`]: the two ends of a
//! kernel-3 convolution done as Winograd's minimal filtering — the input
//! cut into tiles of n steps, n − 2 apart, each transformed into its points,
//! then (after a matrix product per point and channel group, done by ONNX
//! Runtime's `MatMul` between the two calls) the products transformed back
//! into m outputs per tile, with the bias and the ReLU (the exported
//! encoder uses F(m, 3): n = m + 2 steps and as many points; the kernels
//! take any transforms of those shapes). Both work time-major (`[B, T,
//! C]`), so that a step's channels are contiguous: each is one pass over
//! its input, 8 channels at a time with the tile's points in registers,
//! where the standard-op bodies pad, gather, transpose and multiply by the
//! small transform matrices in several.
use ort::operator::ComputeContext;
use tcanet_models::onnx::{WINOGRAD_TILES, WINOGRAD_UNTILE_RELU};

use super::{
    count_mismatch, input, mul_add, output, product_fits, run_vectorized, sizes, to_ort, Arg,
    Function, SharedOut, TapElement, Vectorized,
};

/// Tiles one parallel task transforms (large enough to amortise the
/// hand-off).
const TILES_PER_TASK: usize = 16;
/// Channels computed together (an AVX2 register of float32).
const LANES: usize = 8;
/// The most steps per tile and points per tile the kernels take.
pub const MAX_TILE: usize = 10;

/// Why a [`WINOGRAD_TILES`] or [`WINOGRAD_UNTILE_RELU`] call's inputs were
/// refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op}: {message}")]
pub struct WinogradError {
    /// The function.
    pub op: &'static str,
    /// What does not fit.
    pub message: String,
}

fn err(op: &'static str, message: String) -> WinogradError {
    WinogradError { op, message }
}

/// `shape` as `N` sizes of `form` (see [`sizes`]), or the error naming
/// input `what` of function `op`.
fn dims<const N: usize>(
    op: &'static str,
    what: &str,
    shape: &[i64],
    form: &str,
) -> Result<[usize; N], WinogradError> {
    sizes(what, shape, form).map_err(|m| err(op, m))
}

/// The shapes of one [`WINOGRAD_TILES`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TilesDims {
    /// Batch size B.
    pub batch: usize,
    /// Time steps T of the input.
    pub steps: usize,
    /// Channel groups G.
    pub groups: usize,
    /// Channels per group.
    pub group_channels: usize,
    /// Points per tile (the transform's rows).
    pub points: usize,
    /// Steps per tile, n (the transform's columns); tiles start n − 2
    /// steps apart.
    pub span: usize,
}

impl TilesDims {
    /// From the shapes of the input (`[B, T, G, C/G]`) and of the transform
    /// (`[points, n]`, 3 ≤ n ≤ [`MAX_TILE`], 1 ≤ points ≤ [`MAX_TILE`]).
    pub fn new(x: &[i64], transform: &[i64]) -> Result<Self, WinogradError> {
        let op = WINOGRAD_TILES;
        let [batch, steps, groups, group_channels] = dims(op, "x", x, "[B, T, G, C/G]")?;
        let [points, span] = dims(op, "transform", transform, "[points, n]")?;
        if !(3..=MAX_TILE).contains(&span) || !(1..=MAX_TILE).contains(&points) {
            return Err(err(
                op,
                format!(
                    "transform has shape {transform:?}, not [points, n] with 3 ≤ n ≤ {MAX_TILE} and 1 ≤ points ≤ {MAX_TILE}"
                ),
            ));
        }
        let d = Self {
            batch,
            steps,
            groups,
            group_channels,
            points,
            span,
        };
        if !product_fits(&d.output_shape()) {
            return Err(err(op, format!("x of shape {x:?} is too large")));
        }
        Ok(d)
    }

    /// Steps between the starts of two tiles, n − 2.
    pub fn stride(&self) -> usize {
        self.span - 2
    }

    /// Tiles P = ⌈T / (n − 2)⌉.
    pub fn tiles(&self) -> usize {
        self.steps.div_ceil(self.stride())
    }

    /// `[G, points, B, P, C/G]`.
    pub fn output_shape(&self) -> [usize; 5] {
        [
            self.groups,
            self.points,
            self.batch,
            self.tiles(),
            self.group_channels,
        ]
    }

    /// Parallel tasks: every batch's tiles in blocks of [`TILES_PER_TASK`].
    fn tasks(&self) -> usize {
        self.batch * self.tiles().div_ceil(TILES_PER_TASK)
    }
}

/// [`WINOGRAD_TILES`] on one thread, for tests and tools: `out`
/// (`G·points·B·P·C/G` values) from `x` (`B·T·G·C/G`) and `transform`
/// (`points·n`).
pub fn winograd_tiles<T: TapElement>(
    d: &TilesDims,
    x: &[T],
    transform: &[T],
    out: &mut [T],
) -> Result<(), WinogradError> {
    check_tiles_lengths(d, x, transform, out.len())?;
    let shared = SharedOut(out.as_mut_ptr());
    let tr = to_f32(transform);
    // One task at a time, each writing its own tiles of the checked `out`.
    for task in 0..d.tasks() {
        run_vectorized(Task::Tiles {
            d,
            x,
            tr: &tr,
            task,
            out: &shared,
        });
    }
    Ok(())
}

fn check_tiles_lengths<T>(
    d: &TilesDims,
    x: &[T],
    transform: &[T],
    out: usize,
) -> Result<(), WinogradError> {
    let expect = [
        (
            "x",
            d.batch * d.steps * d.groups * d.group_channels,
            x.len(),
        ),
        ("transform", d.points * d.span, transform.len()),
        ("output", d.output_shape().iter().product(), out),
    ];
    lengths(WINOGRAD_TILES, &expect)
}

fn lengths(op: &'static str, expect: &[(&str, usize, usize)]) -> Result<(), WinogradError> {
    count_mismatch(expect).map_or(Ok(()), |m| Err(err(op, m)))
}

fn to_f32<T: TapElement>(v: &[T]) -> Vec<f32> {
    v.iter().map(|x| x.to_f32()).collect()
}

/// A transform matrix as fixed-size rows (zero beyond its `cols`).
fn matrix(tr: &[f32], cols: usize) -> [[f32; MAX_TILE]; MAX_TILE] {
    std::array::from_fn(|r| {
        std::array::from_fn(|j| {
            if j < cols {
                tr.get(r * cols + j).copied().unwrap_or(0.0)
            } else {
                0.0
            }
        })
    })
}

/// Task `task` of the output: one batch, a block of tiles, every group.
///
/// # Safety
/// `out` holds the whole output, and no other task writes these tiles.
#[inline(always)]
unsafe fn tiles_task<T: TapElement, const FUSED: bool>(
    d: &TilesDims,
    x: &[T],
    tr: &[f32],
    task: usize,
    out: &SharedOut<T>,
) {
    let (n, m, p_count, c) = (d.span, d.stride(), d.tiles(), d.group_channels);
    let w = matrix(tr, n);
    let shape = (d.points, n);
    let blocks = p_count.div_ceil(TILES_PER_TASK);
    let (b, first) = (task / blocks, task % blocks * TILES_PER_TASK);
    let row = d.groups * c;
    for p in first..(first + TILES_PER_TASK).min(p_count) {
        // The tile's n input rows (None in the zero padding).
        let rows: [Option<&[T]>; MAX_TILE] = std::array::from_fn(|j| {
            let t = (p * m + j)
                .checked_sub(1)
                .filter(|&t| j < n && t < d.steps)?;
            Some(&x[(b * d.steps + t) * row..(b * d.steps + t + 1) * row])
        });
        for g in 0..d.groups {
            let at = ((g * d.points * d.batch + b) * p_count + p) * c;
            let stride = d.batch * p_count * c;
            let full = c / LANES * LANES;
            for c0 in (0..full).step_by(LANES) {
                // SAFETY: as this function's.
                unsafe {
                    tile_points::<T, LANES, FUSED>(
                        &rows,
                        g * c + c0,
                        &w,
                        shape,
                        out,
                        at + c0,
                        stride,
                    )
                };
            }
            for c0 in full..c {
                // SAFETY: as this function's.
                unsafe {
                    tile_points::<T, 1, FUSED>(&rows, g * c + c0, &w, shape, out, at + c0, stride)
                };
            }
        }
    }
}

/// The points of one tile (`shape`: points, steps) for `L` channels from
/// `col` of its rows, written from `to` with `stride` between points.
///
/// # Safety
/// As [`tiles_task`]'s.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_points<T: TapElement, const L: usize, const FUSED: bool>(
    rows: &[Option<&[T]>; MAX_TILE],
    col: usize,
    w: &[[f32; MAX_TILE]; MAX_TILE],
    (points, n): (usize, usize),
    out: &SharedOut<T>,
    to: usize,
    stride: usize,
) {
    let mut v = [[0f32; L]; MAX_TILE];
    for (vj, rj) in v.iter_mut().zip(rows).take(n) {
        if let Some(r) = rj {
            let r: &[T; L] = r[col..col + L].try_into().expect("L values");
            *vj = r.map(|x| x.to_f32());
        }
    }
    for (xi, wx) in w.iter().enumerate().take(points) {
        let mut y = [0f32; L];
        for (vj, &wj) in v.iter().zip(wx).take(n) {
            for l in 0..L {
                y[l] = mul_add::<FUSED>(wj, vj[l], y[l]);
            }
        }
        let at = to + xi * stride;
        // SAFETY: the caller's tile; within the output.
        let o = unsafe { out.outputs(at, at + L, 1) };
        for (o, &y) in o.iter_mut().zip(&y) {
            *o = T::from_f32(y);
        }
    }
}

/// The shapes of one [`WINOGRAD_UNTILE_RELU`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UntileDims {
    /// Batch size B.
    pub batch: usize,
    /// Channel groups G.
    pub groups: usize,
    /// Points per tile.
    pub points: usize,
    /// Tiles P.
    pub tiles: usize,
    /// Output channels per group.
    pub group_channels: usize,
    /// Outputs per tile, m (the transform is m × points).
    pub outputs_per_tile: usize,
    /// Output steps T, with m·(P − 1) < T ≤ m·P.
    pub steps: usize,
}

impl UntileDims {
    /// From the shapes of the products (`[G, points, B, P, C/G]`), the
    /// transform (`[m, points]`) and the bias (`[C]`), and the output steps
    /// T.
    pub fn new(
        products: &[i64],
        transform: &[i64],
        bias: &[i64],
        steps: i64,
    ) -> Result<Self, WinogradError> {
        let op = WINOGRAD_UNTILE_RELU;
        let [groups, points, batch, tiles, group_channels] =
            dims(op, "products", products, "[G, points, B, P, C/G]")?;
        let [m, n] = dims(op, "transform", transform, "[m, points]")?;
        if n != points || !(1..=MAX_TILE).contains(&m) || !(1..=MAX_TILE).contains(&n) {
            return Err(err(
                op,
                format!(
                    "transform has shape {transform:?}, not [m, {points}] with 1 ≤ m, points ≤ {MAX_TILE}"
                ),
            ));
        }
        let [c] = dims(op, "bias", bias, "[C]")?;
        if groups.checked_mul(group_channels) != Some(c) {
            return Err(err(
                op,
                format!("bias has shape {bias:?}, not [{groups} × {group_channels}]"),
            ));
        }
        let fits = usize::try_from(steps)
            .ok()
            .filter(|&t| t > m * tiles.saturating_sub(1) && t <= m * tiles);
        let Some(steps) = fits else {
            return Err(err(
                op,
                format!("{steps} output steps do not fit {tiles} tiles of {m}"),
            ));
        };
        let d = Self {
            batch,
            groups,
            points,
            tiles,
            group_channels,
            outputs_per_tile: m,
            steps,
        };
        if !product_fits(&d.output_shape()) {
            return Err(err(op, format!("{steps} output steps are too many")));
        }
        Ok(d)
    }

    /// `[B, T, C]`.
    pub fn output_shape(&self) -> [usize; 3] {
        [self.batch, self.steps, self.groups * self.group_channels]
    }

    /// Parallel tasks: every batch's tiles in blocks of [`TILES_PER_TASK`].
    fn tasks(&self) -> usize {
        self.batch * self.tiles.div_ceil(TILES_PER_TASK)
    }
}

/// [`WINOGRAD_UNTILE_RELU`] on one thread, for tests and tools: `out`
/// (`B·T·C` values) from `products` (`G·points·B·P·C/G`), `transform`
/// (`m·points`)
/// and `bias` (`C`).
pub fn winograd_untile_relu<T: TapElement>(
    d: &UntileDims,
    products: &[T],
    transform: &[T],
    bias: &[T],
    out: &mut [T],
) -> Result<(), WinogradError> {
    check_untile_lengths(d, products, transform, bias, out.len())?;
    let (tr, bias) = (to_f32(transform), to_f32(bias));
    let shared = SharedOut(out.as_mut_ptr());
    // One task at a time, each writing its own steps of the checked `out`.
    for task in 0..d.tasks() {
        run_vectorized(Task::Untile {
            d,
            products,
            tr: &tr,
            bias: &bias,
            task,
            out: &shared,
        });
    }
    Ok(())
}

fn check_untile_lengths<T>(
    d: &UntileDims,
    products: &[T],
    transform: &[T],
    bias: &[T],
    out: usize,
) -> Result<(), WinogradError> {
    let c = d.groups * d.group_channels;
    let expect = [
        ("products", d.batch * d.points * d.tiles * c, products.len()),
        ("transform", d.outputs_per_tile * d.points, transform.len()),
        ("bias", c, bias.len()),
        ("output", d.output_shape().iter().product(), out),
    ];
    lengths(WINOGRAD_UNTILE_RELU, &expect)
}

/// Task `task` of the products (one batch, a block of tiles, every group)
/// into their output steps.
///
/// # Safety
/// `out` holds the whole output, and no other task writes these steps.
#[inline(always)]
unsafe fn untile_task<T: TapElement, const FUSED: bool>(
    d: &UntileDims,
    products: &[T],
    tr: &[f32],
    bias: &[f32],
    task: usize,
    out: &SharedOut<T>,
) {
    let (n, m, c) = (d.points, d.outputs_per_tile, d.group_channels);
    let w = matrix(tr, n);
    let blocks = d.tiles.div_ceil(TILES_PER_TASK);
    let (b, first) = (task / blocks, task % blocks * TILES_PER_TASK);
    let row = d.groups * c;
    for p in first..(first + TILES_PER_TASK).min(d.tiles) {
        let outputs = m.min(d.steps - p * m);
        for g in 0..d.groups {
            let from = ((g * n * d.batch + b) * d.tiles + p) * c;
            let to = (b * d.steps + p * m) * row + g * c;
            let part = Untile {
                products,
                from,
                stride: d.batch * d.tiles * c,
                w: &w,
                n,
                outputs,
                row,
            };
            let full = c / LANES * LANES;
            for c0 in (0..full).step_by(LANES) {
                // SAFETY: as this function's.
                unsafe { part.outputs::<LANES, FUSED>(c0, &bias[g * c + c0..], out, to + c0) };
            }
            for c0 in full..c {
                // SAFETY: as this function's.
                unsafe { part.outputs::<1, FUSED>(c0, &bias[g * c + c0..], out, to + c0) };
            }
        }
    }
}

/// One tile of one group's products, to untile.
struct Untile<'a, T> {
    products: &'a [T],
    /// Offset of point 0, channel 0.
    from: usize,
    /// Between points.
    stride: usize,
    w: &'a [[f32; MAX_TILE]; MAX_TILE],
    n: usize,
    /// Output steps of the tile (m, or fewer at the end).
    outputs: usize,
    /// Between output steps.
    row: usize,
}

impl<T: TapElement> Untile<'_, T> {
    /// Channels `col..col + L` of the tile's outputs, with `bias` (from
    /// `col`), written from `to` with `row` between steps.
    ///
    /// # Safety
    /// As [`untile_task`]'s.
    #[inline(always)]
    unsafe fn outputs<const L: usize, const FUSED: bool>(
        &self,
        col: usize,
        bias: &[f32],
        out: &SharedOut<T>,
        to: usize,
    ) {
        let mut v = [[0f32; L]; MAX_TILE];
        for (xi, vx) in v.iter_mut().enumerate().take(self.n) {
            let at = self.from + xi * self.stride + col;
            let p: &[T; L] = self.products[at..at + L].try_into().expect("L values");
            *vx = p.map(|x| x.to_f32());
        }
        let bias: &[f32; L] = bias[..L].try_into().expect("L values");
        for (r, wr) in self.w.iter().enumerate().take(self.outputs) {
            let mut y = *bias;
            for (vx, &wx) in v.iter().zip(wr).take(self.n) {
                for l in 0..L {
                    y[l] = mul_add::<FUSED>(wx, vx[l], y[l]);
                }
            }
            let at = to + r * self.row;
            // SAFETY: the caller's steps; within the output.
            let o = unsafe { out.outputs(at, at + L, 1) };
            for (o, &y) in o.iter_mut().zip(&y) {
                // NaN stays NaN, as `Relu`.
                *o = T::from_f32(if y < 0.0 { 0.0 } else { y });
            }
        }
    }
}

/// One parallel task of [`tiles_task`] or [`untile_task`], as
/// [`Vectorized`] work. Made only where the task's outputs are its own
/// (the functions' safety condition).
enum Task<'a, T> {
    Tiles {
        d: &'a TilesDims,
        x: &'a [T],
        tr: &'a [f32],
        task: usize,
        out: &'a SharedOut<T>,
    },
    Untile {
        d: &'a UntileDims,
        products: &'a [T],
        tr: &'a [f32],
        bias: &'a [f32],
        task: usize,
        out: &'a SharedOut<T>,
    },
}

impl<T: TapElement> Vectorized for Task<'_, T> {
    #[inline(always)]
    fn run<const FUSED: bool>(self) {
        match self {
            // SAFETY: a task is made only for outputs of its own (above).
            Task::Tiles {
                d,
                x,
                tr,
                task,
                out,
            } => unsafe { tiles_task::<T, FUSED>(d, x, tr, task, out) },
            Task::Untile {
                d,
                products,
                tr,
                bias,
                task,
                out,
            } => unsafe { untile_task::<T, FUSED>(d, products, tr, bias, task, out) },
        }
    }
}

fn as_i64(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

/// [`WINOGRAD_TILES`]'s kernel.
pub(super) struct Tiles;

impl<T: TapElement> Function<T> for Tiles {
    const NAME: &'static str = WINOGRAD_TILES;
    const INPUTS: &'static [Arg] = &[Arg::Elements, Arg::Elements];

    fn compute(ctx: &ComputeContext) -> ort::Result<()> {
        let op = WINOGRAD_TILES;
        let (x, transform) = (input(ctx, op, 0)?, input(ctx, op, 1)?);
        let (x_shape, x) = x.try_extract_tensor::<T>()?;
        let (tr_shape, transform) = transform.try_extract_tensor::<T>()?;
        let d = TilesDims::new(x_shape, tr_shape).map_err(to_ort)?;
        let len = d.output_shape().iter().product();
        check_tiles_lengths(&d, x, transform, len).map_err(to_ort)?;
        let tr = to_f32(transform);
        let out = output::<T>(ctx, op, as_i64(&d.output_shape()), len)?;
        // Each task writes its own tiles of the checked output.
        ctx.par_for(d.tasks(), 0, |task| {
            run_vectorized(Task::Tiles {
                d: &d,
                x,
                tr: &tr,
                task,
                out: &out,
            })
        })
    }
}

/// [`WINOGRAD_UNTILE_RELU`]'s kernel.
pub(super) struct UntileRelu;

impl<T: TapElement> Function<T> for UntileRelu {
    const NAME: &'static str = WINOGRAD_UNTILE_RELU;
    const INPUTS: &'static [Arg] = &[Arg::Elements, Arg::Elements, Arg::Elements, Arg::Int64];

    fn compute(ctx: &ComputeContext) -> ort::Result<()> {
        let op = WINOGRAD_UNTILE_RELU;
        let (products, transform) = (input(ctx, op, 0)?, input(ctx, op, 1)?);
        let (bias, steps) = (input(ctx, op, 2)?, input(ctx, op, 3)?);
        let (p_shape, products) = products.try_extract_tensor::<T>()?;
        let (tr_shape, transform) = transform.try_extract_tensor::<T>()?;
        let (bias_shape, bias) = bias.try_extract_tensor::<T>()?;
        let (_, steps) = steps.try_extract_tensor::<i64>()?;
        let [steps] = *steps else {
            return Err(ort::Error::new(format!(
                "{op}: steps holds {} values, not 1",
                steps.len()
            )));
        };
        let d = UntileDims::new(p_shape, tr_shape, bias_shape, steps).map_err(to_ort)?;
        let len = d.output_shape().iter().product();
        check_untile_lengths(&d, products, transform, bias, len).map_err(to_ort)?;
        let (tr, bias) = (to_f32(transform), to_f32(bias));
        let out = output::<T>(ctx, op, as_i64(&d.output_shape()), len)?;
        // Each task writes its own steps of the checked output.
        ctx.par_for(d.tasks(), 0, |task| {
            run_vectorized(Task::Untile {
                d: &d,
                products,
                tr: &tr,
                bias: &bias,
                task,
                out: &out,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tcanet_testkit::pseudo_random;

    /// F(2, 3): Bᵀ, G and Aᵀ of Lavin and Gray.
    const BT: [f32; 16] = [
        1., 0., -1., 0., 0., 1., 1., 0., 0., -1., 1., 0., 0., 1., 0., -1.,
    ];
    const G: [[f64; 3]; 4] = [
        [1., 0., 0.],
        [0.5, 0.5, 0.5],
        [0.5, -0.5, 0.5],
        [0., 0., 1.],
    ];
    const AT: [f32; 8] = [1., 1., 1., 0., 0., 1., -1., -1.];

    /// Tiles, products per point and group, untiling: a grouped conv
    /// (kernel 3, padding 1) with ReLU, against the direct sum in f64, for
    /// an odd T (the last tile half outside) within one block of tiles and
    /// over several.
    #[test]
    fn tiles_products_untile_is_the_grouped_conv() {
        for t in [7, 71] {
            conv_through_tiles(t);
        }
    }

    fn conv_through_tiles(t: usize) {
        let (b, g, ci, co) = (2usize, 2usize, 3usize, 5usize);
        let x = pseudo_random(b * t * g * ci, 1); // [B, T, G, Ci]
        let w = pseudo_random(g * co * ci * 3, 2); // [G·Co, Ci, 3]
        let bias = pseudo_random(g * co, 3);
        let td = TilesDims::new(&[2, t as i64, 2, 3], &[4, 4]).unwrap();
        assert_eq!(td.output_shape(), [2, 4, 2, t.div_ceil(2), 3]);
        let mut v = vec![f32::NAN; td.output_shape().iter().product()];
        winograd_tiles(&td, &x, &BT, &mut v).unwrap();
        // Products: M[g, ξ, b, p, o] = Σ_c V[g, ξ, b, p, c] · U[g, ξ, c, o].
        let (n, p_count) = (4, td.tiles());
        let u = |gi: usize, xi: usize, c: usize, o: usize| -> f64 {
            (0..3)
                .map(|k| G[xi][k] * w[((gi * co + o) * ci + c) * 3 + k] as f64)
                .sum()
        };
        let mut m = vec![0f32; b * g * n * p_count * co];
        for (at, y) in m.iter_mut().enumerate() {
            let (o, p, bi, xi, gi) = (
                at % co,
                at / co % p_count,
                at / (co * p_count) % b,
                at / (co * p_count * b) % n,
                at / (co * p_count * b * n),
            );
            *y = (0..ci)
                .map(|c| {
                    v[(((gi * n + xi) * b + bi) * p_count + p) * ci + c] as f64 * u(gi, xi, c, o)
                })
                .sum::<f64>() as f32;
        }
        let p = t.div_ceil(2) as i64;
        let ud = UntileDims::new(&[2, 4, 2, p, 5], &[2, 4], &[10], t as i64).unwrap();
        let mut y = vec![f32::NAN; b * t * g * co];
        winograd_untile_relu(&ud, &m, &AT, &bias, &mut y).unwrap();
        let mut zeros = 0;
        for bi in 0..b {
            for s in 0..t {
                for gi in 0..g {
                    for o in 0..co {
                        let mut want = bias[gi * co + o] as f64;
                        for k in 0..3 {
                            let Some(src) = (s + k).checked_sub(1).filter(|&q| q < t) else {
                                continue;
                            };
                            for c in 0..ci {
                                want += w[((gi * co + o) * ci + c) * 3 + k] as f64
                                    * x[((bi * t + src) * g + gi) * ci + c] as f64;
                            }
                        }
                        let want = want.max(0.0);
                        zeros += usize::from(want == 0.0);
                        let got = y[(bi * t + s) * g * co + gi * co + o] as f64;
                        assert!(
                            (got - want).abs() < 1e-5,
                            "b{bi} t{s} g{gi} o{o}: {got} vs {want}"
                        );
                    }
                }
            }
        }
        assert!(zeros > 0 && zeros < y.len());
    }

    /// Zero channels, batches or steps give an empty output (or, for an
    /// untiling with no tiles, an error), not a panic.
    #[test]
    fn empty_shapes_are_handled() {
        for x in [[1i64, 5, 2, 0], [0, 5, 2, 3], [1, 5, 0, 3], [1, 0, 2, 3]] {
            let d = TilesDims::new(&x, &[4, 4]).unwrap();
            let mut out = vec![0.0f32; d.output_shape().iter().product()];
            let input = vec![0.0f32; x.iter().product::<i64>() as usize];
            winograd_tiles(&d, &input, &BT, &mut out).unwrap();
        }
        let d = UntileDims::new(&[1, 4, 1, 2, 0], &[2, 4], &[0], 3).unwrap();
        winograd_untile_relu::<f32>(&d, &[], &AT, &[], &mut []).unwrap();
        assert!(UntileDims::new(&[1, 4, 1, 0, 2], &[2, 4], &[2], 0).is_err());
    }

    #[test]
    fn shapes_that_do_not_fit_are_refused() {
        assert!(TilesDims::new(&[1, 7, 2], &[4, 4]).is_err());
        assert!(TilesDims::new(&[1, 7, 2, 3], &[4, 2]).is_err());
        assert!(TilesDims::new(&[1, 7, 2, 3], &[0, 4]).is_err());
        assert!(TilesDims::new(&[1, 7, 2, 3], &[11, 4]).is_err());
        assert!(TilesDims::new(&[1, 7, 2, 3], &[4, 11]).is_err());
        assert_eq!(TilesDims::new(&[1, 7, 2, 3], &[5, 6]).unwrap().tiles(), 2);
        assert!(TilesDims::new(&[1, -7, 2, 3], &[4, 4]).is_err());
        let huge = 1i64 << 40;
        assert!(TilesDims::new(&[huge, huge, 2, 3], &[4, 4]).is_err());
        let ok = [2, 4, 1, 4, 5];
        assert!(UntileDims::new(&ok, &[2, 4], &[10], 8).is_ok());
        assert!(UntileDims::new(&ok, &[2, 4], &[10], 9).is_err());
        assert!(UntileDims::new(&ok, &[2, 4], &[10], 6).is_err());
        assert!(UntileDims::new(&ok, &[2, 4], &[10], -1).is_err());
        assert!(UntileDims::new(&ok, &[2, 3], &[10], 8).is_err());
        assert!(UntileDims::new(&ok, &[2, 4], &[9], 8).is_err());
        assert!(UntileDims::new(&ok, &[0, 4], &[10], 0).is_err());
        let e = UntileDims::new(&ok, &[2, 4], &[10], 9).unwrap_err();
        assert_eq!(
            e.to_string(),
            "WinogradUntileRelu: 9 output steps do not fit 4 tiles of 2"
        );
        let td = TilesDims::new(&[1, 2, 1, 1], &[4, 4]).unwrap();
        let e = winograd_tiles(&td, &[1.0f32], &BT, &mut [0.0; 4]).unwrap_err();
        assert!(e.to_string().contains("x holds 1 values, not 2"), "{e}");
    }
}
