"""The compute process: drives one host's hypervisor through a virt driver, runs the calls the api
accepted, reports each outcome into the record, and reconciles the hypervisor with the records."""
