"""The libvirt virt driver's building blocks: domain XML, config drive, disks and the image cache."""
