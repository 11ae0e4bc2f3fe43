"""Other machines: commands on hosts over SSH (planeai.remote.ssh). The remote session backend
builds on this layer."""
