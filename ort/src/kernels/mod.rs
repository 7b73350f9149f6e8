//! The project's CPU kernels for the model-local ONNX functions of an
//! exported model (domain [`FUNCTION_DOMAIN`]). A model runs without them:
//! ONNX Runtime then inlines each function's standard-op body. With them,
//! each function runs as one pass over its inputs instead of the body's
//! chain of operators, each writing a buffer that the next one reads:
//!
//! * [`TAP_SUM`] ([`tap_sum()`]): the TBR first convs read from their tap
//!   tables;
//! * [`LOCAL_ATTENTION`] ([`local_attention()`]): the LGTE local heads over
//!   their key windows;
//! * [`WINOGRAD_TILES`] and [`WINOGRAD_UNTILE_RELU`] ([`winograd_tiles()`],
//!   [`winograd_untile_relu()`]): the two ends of the base encoder's convs
//!   done as Winograd's minimal filtering.
use tcanet_models::onnx::FUNCTION_DOMAIN;
#[cfg(doc)]
use tcanet_models::onnx::{LOCAL_ATTENTION, TAP_SUM, WINOGRAD_TILES, WINOGRAD_UNTILE_RELU};

use std::fmt;
use std::marker::PhantomData;

use ort::operator::{
    ComputeContext, Kernel, KernelContext, Operator, OperatorDomain, OperatorInput, OperatorOutput,
};
use ort::value::TensorElementType;

mod local_attention;
mod tap_sum;
mod winograd;

pub use local_attention::{local_attention, LocalAttentionDims, LocalAttentionError};
pub use tap_sum::{resolve_shape, tap_sum, TapSumDims, TapSumError};
pub use winograd::{winograd_tiles, winograd_untile_relu, TilesDims, UntileDims, WinogradError};

/// The operator domain with every kernel, for a CPU session, each for
/// float32 and float16 models (ONNX Runtime refuses a model whose call has
/// a type no registered kernel takes, rather than inlining it).
pub fn cpu_kernels() -> ort::Result<OperatorDomain> {
    let domain = OperatorDomain::new(FUNCTION_DOMAIN)?;
    let domain = both_types::<tap_sum::TapSum>(domain)?;
    let domain = both_types::<local_attention::LocalAttention>(domain)?;
    let domain = both_types::<winograd::Tiles>(domain)?;
    both_types::<winograd::UntileRelu>(domain)
}

/// `domain` with function `F`'s kernel for float32 and float16.
fn both_types<F: Function<f32> + Function<half::f16>>(
    domain: OperatorDomain,
) -> ort::Result<OperatorDomain> {
    domain
        .add(FunctionOp::<f32, F>(PhantomData))?
        .add(FunctionOp::<half::f16, F>(PhantomData))
}

/// What an input of a [`Function`] holds.
#[derive(Debug, Clone, Copy)]
enum Arg {
    /// Elements of the kernel's type (float32 or float16).
    Elements,
    /// int64 (indices, shapes, counts).
    Int64,
}

/// One of the model's functions, computed by a kernel on elements `T`
/// (one output, of type `T`).
trait Function<T: TapElement>: Send + Sync + 'static {
    /// The function's name in [`FUNCTION_DOMAIN`].
    const NAME: &'static str;
    /// Its inputs, in order.
    const INPUTS: &'static [Arg];
    /// Reads the inputs from `ctx`, checks them and writes the output.
    fn compute(ctx: &ComputeContext) -> ort::Result<()>;
}

/// [`Function`] `F` on elements `T` as an ONNX Runtime custom operator.
struct FunctionOp<T, F>(PhantomData<(T, F)>);

impl<T: TapElement, F: Function<T>> Operator for FunctionOp<T, F> {
    type Kernel<'attr> = FunctionKernel<T, F>;

    fn name(&self) -> &str {
        F::NAME
    }

    fn inputs(&self) -> impl IntoIterator<Item = OperatorInput> {
        F::INPUTS.iter().map(|arg| {
            OperatorInput::required(match arg {
                Arg::Elements => T::into_tensor_element_type(),
                Arg::Int64 => TensorElementType::Int64,
            })
        })
    }

    fn outputs(&self) -> impl IntoIterator<Item = OperatorOutput> {
        [OperatorOutput::required(T::into_tensor_element_type())]
    }

    fn create_kernel<'attr>(&self, _: &KernelContext<'attr>) -> ort::Result<FunctionKernel<T, F>> {
        Ok(FunctionKernel(PhantomData))
    }
}

/// The kernel of [`FunctionOp`].
struct FunctionKernel<T, F>(PhantomData<(T, F)>);

impl<T: TapElement, F: Function<T>> Kernel for FunctionKernel<T, F> {
    fn compute(&mut self, ctx: &ComputeContext) -> ort::Result<()> {
        F::compute(ctx)
    }
}

/// Input `i` of a kernel call, or an error naming the function.
fn input<'a>(ctx: &'a ComputeContext, op: &str, i: usize) -> ort::Result<ort::value::ValueRef<'a>> {
    ctx.input(i)?
        .ok_or_else(|| ort::Error::new(format!("{op}: input {i} is missing")))
}

/// The output buffer of a kernel call, of `shape` and `len` values,
/// checked against what ONNX Runtime allocated.
fn output<T: TapElement>(
    ctx: &ComputeContext,
    op: &str,
    shape: Vec<i64>,
    len: usize,
) -> ort::Result<SharedOut<T>> {
    let mut out = ctx
        .output(0, shape)?
        .ok_or_else(|| ort::Error::new(format!("{op}: no output")))?;
    let (_, out) = out.try_extract_tensor_mut::<T>()?;
    if out.len() != len {
        return Err(ort::Error::new(format!(
            "{op}: ONNX Runtime allocated {} output values, not {len}",
            out.len()
        )));
    }
    Ok(SharedOut(out.as_mut_ptr()))
}

/// Converts a kernel's own error into ONNX Runtime's.
fn to_ort(e: impl fmt::Display) -> ort::Error {
    ort::Error::new(e.to_string())
}

/// A dimension as a size (`None` for a negative one).
fn size(d: i64) -> Option<usize> {
    usize::try_from(d).ok()
}

/// `shape` as `N` sizes whose product fits in a `usize`, or the message
/// naming input `what` and the `form` it should have.
fn sizes<const N: usize>(what: &str, shape: &[i64], form: &str) -> Result<[usize; N], String> {
    let bad = || format!("{what} has shape {shape:?}, not {form}");
    let dims: [i64; N] = shape.try_into().map_err(|_| bad())?;
    let mut out = [0usize; N];
    for (o, &d) in out.iter_mut().zip(&dims) {
        *o = size(d).ok_or_else(bad)?;
    }
    if !product_fits(&out) {
        return Err(format!("{what} of shape {shape:?} is too large"));
    }
    Ok(out)
}

/// Whether the product of `dims` fits in a `usize`.
fn product_fits(dims: &[usize]) -> bool {
    dims.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .is_some()
}

/// The first of `(what, wanted, got)` whose value counts differ, as
/// "what holds got values, not wanted".
fn count_mismatch(expect: &[(&str, usize, usize)]) -> Option<String> {
    expect
        .iter()
        .find(|(_, want, got)| want != got)
        .map(|(what, want, got)| format!("{what} holds {got} values, not {want}"))
}

/// `index` by `Gather`'s rule (negative ones count from the end) as a
/// position in `0..len`, or `None` outside.
fn gather_position(index: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let at = if index < 0 { index + len } else { index };
    (0..len).contains(&at).then_some(at as usize)
}

/// A tensor element the kernels read and write; they compute in float32.
pub trait TapElement:
    Copy + Send + Sync + ort::value::PrimitiveTensorElementType + 'static
{
    /// The element as float32.
    fn to_f32(self) -> f32;
    /// A float32 rounded to the element type.
    fn from_f32(v: f32) -> Self;
}

impl TapElement for f32 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v
    }
}

impl TapElement for half::f16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        half::f16::to_f32(self)
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        half::f16::from_f32(v)
    }
}

/// A kernel's inner loops, run through a copy compiled for AVX2 + FMA where
/// the CPU has them (chosen at run time; the portable copy otherwise).
trait Vectorized {
    /// The loops, their multiply-adds through [`mul_add`]`::<FUSED>`.
    /// Implementations are `#[inline(always)]`, so that the AVX2 copy of
    /// [`run_vectorized`] compiles them for AVX2 + FMA.
    fn run<const FUSED: bool>(self);
}

/// Runs `work` through its AVX2 + FMA copy where the CPU has them (with
/// fused multiply-adds), the portable copy otherwise (fused on AArch64,
/// where every CPU has fused multiply-add instructions).
fn run_vectorized<W: Vectorized>(work: W) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features `run_avx2` is compiled for.
        return unsafe { run_avx2(work) };
    }
    work.run::<{ cfg!(target_arch = "aarch64") }>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<W: Vectorized>(work: W) {
    work.run::<true>()
}

/// `acc + a·b`: one fused multiply-add (one rounding) when `FUSED`, which
/// only the AVX2 + FMA copy of a kernel and AArch64 ask for (there it is a
/// single instruction; on other x86-64 CPUs `f32::mul_add` is a slow
/// library call), a multiplication and an addition otherwise.
#[inline(always)]
fn mul_add<const FUSED: bool>(a: f32, b: f32, acc: f32) -> f32 {
    if FUSED {
        a.mul_add(b, acc)
    } else {
        acc + a * b
    }
}

/// An output buffer shared by a kernel's parallel tasks (each writes its
/// own rows).
struct SharedOut<T>(*mut T);

// SAFETY: the tasks write disjoint ranges of one live buffer.
unsafe impl<T> Sync for SharedOut<T> {}
unsafe impl<T> Send for SharedOut<T> {}

impl<T> SharedOut<T> {
    /// Rows `first..last` of `c` values each.
    ///
    /// # Safety
    /// The range is within the buffer and no other task writes it.
    #[allow(clippy::mut_from_ref)]
    unsafe fn outputs(&self, first: usize, last: usize, c: usize) -> &mut [T] {
        unsafe { std::slice::from_raw_parts_mut(self.0.add(first * c), (last - first) * c) }
    }
}

impl<T> fmt::Debug for SharedOut<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedOut")
    }
}
