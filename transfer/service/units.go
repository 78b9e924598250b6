package service

import _ "embed"

// ServiceUnit and SocketUnit are transferd's systemd units, embedded so the
// provisioning control installs exactly what is tested here.
var (
	//go:embed systemd/transferd.service
	ServiceUnit []byte
	//go:embed systemd/transferd.socket
	SocketUnit []byte
)
