//! `--device` on this machine: whether the device asked for exists
//! ([`resolve`]), and device names for messages. The spellings are the
//! command line's ([`DeviceSpec`]).
use tch::Device;

pub use tcanet_train_args::device::DeviceSpec;

/// A device that is not usable here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// No CUDA device is visible to libtorch.
    #[error(
        "--device {given}: CUDA is not available (no GPU visible to libtorch, or a CPU-only \
         libtorch); use --device cpu or auto"
    )]
    NoCuda {
        /// The device as given.
        given: DeviceSpec,
    },
    /// The CUDA device index is beyond the visible devices.
    #[error("--device {given}: only {count} CUDA device(s) are visible")]
    NoSuchCuda {
        /// The device as given.
        given: DeviceSpec,
        /// Devices visible.
        count: usize,
    },
}

/// The tch device of `spec`, checked against the GPUs libtorch sees.
pub fn resolve(spec: DeviceSpec) -> Result<Device, DeviceError> {
    match spec {
        DeviceSpec::Auto => Ok(if tch::Cuda::is_available() {
            Device::Cuda(0)
        } else {
            Device::Cpu
        }),
        DeviceSpec::Cpu => Ok(Device::Cpu),
        DeviceSpec::Cuda(i) => {
            if !tch::Cuda::is_available() {
                return Err(DeviceError::NoCuda { given: spec });
            }
            let count = tch::Cuda::device_count().max(0) as usize;
            if i >= count {
                return Err(DeviceError::NoSuchCuda { given: spec, count });
            }
            Ok(Device::Cuda(i))
        }
    }
}

/// A device's name for messages and logs: `cpu`, `cuda:0`.
pub fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        Device::Mps => "mps".into(),
        Device::Vulkan => "vulkan".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_the_cpu() {
        assert_eq!(device_name(Device::Cpu), "cpu");
        assert_eq!(device_name(Device::Cuda(1)), "cuda:1");
        assert_eq!(resolve(DeviceSpec::Cpu), Ok(Device::Cpu));
    }
}
