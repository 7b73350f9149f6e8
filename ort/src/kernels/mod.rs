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

use ort::operator::OperatorDomain;
use std::fmt;

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
    OperatorDomain::new(FUNCTION_DOMAIN)?
        .add(tap_sum::TapSumOp::<f32>::new())?
        .add(tap_sum::TapSumOp::<half::f16>::new())?
        .add(local_attention::LocalAttentionOp::<f32>::new())?
        .add(local_attention::LocalAttentionOp::<half::f16>::new())?
        .add(winograd::TilesOp::<f32>::new())?
        .add(winograd::TilesOp::<half::f16>::new())?
        .add(winograd::UntileReluOp::<f32>::new())?
        .add(winograd::UntileReluOp::<half::f16>::new())
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
