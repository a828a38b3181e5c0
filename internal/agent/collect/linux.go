package collect

// Names of the Linux collectors, as they appear in errors.
const (
	NameCPU        = "cpu"
	NameMemory     = "memory"
	NameDisks      = "disks"
	NameInterfaces = "interfaces"
	NameOS         = "os"
	NameKernel     = "kernel"
	NameContainerd = "containerd"
	NameKubelet    = "kubelet"
)

// Linux returns the collectors of a Linux host, reading from src (zero
// fields take their defaults).
func Linux(src Sources) []Collector {
	src = src.withDefaults()
	return []Collector{
		Func(NameCPU, src.collectCPUs),
		Func(NameMemory, src.collectMemory),
		Func(NameDisks, src.collectDisks),
		Func(NameInterfaces, src.collectInterfaces),
		Func(NameOS, src.collectOS),
		Func(NameKernel, src.collectKernel),
		Func(NameContainerd, src.collectContainerd),
		Func(NameKubelet, src.collectKubelet),
	}
}
