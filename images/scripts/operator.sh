#!/bin/sh
# Creates the operator account a test build logs in with after the build
# key is gone (see operator_authorized_key in debian-13.pkr.hcl). Runs in
# the guest as root, before bulwark-harden. Idempotent.
set -eu
if [ -z "${OPERATOR_KEY:-}" ]; then
	echo "operator: no operator key given; the image gets no operator account"
	exit 0
fi
u=$OPERATOR_USER
g=$OPERATOR_GROUP
getent group "$g" >/dev/null || groupadd --system "$g"
id -u "$u" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash --groups "$g" "$u"
usermod -aG "$g" "$u"
# "*" rather than useradd's "!": no password login, but not "locked", which
# sshd would refuse even for a key.
usermod -p '*' "$u"
install -d -m 0700 -o "$u" -g "$u" "/home/$u/.ssh"
printf '%s\n' "$OPERATOR_KEY" >"/home/$u/.ssh/authorized_keys"
chown "$u:$u" "/home/$u/.ssh/authorized_keys"
chmod 0600 "/home/$u/.ssh/authorized_keys"
# Non-interactive sudo: the account exists only in test builds, where a
# harness has to run `bulwark verify` as root without a terminal.
printf '%s ALL=(ALL) NOPASSWD: ALL\n' "$u" >/etc/sudoers.d/90-bulwark-operator
chmod 0440 /etc/sudoers.d/90-bulwark-operator
visudo -cf /etc/sudoers.d/90-bulwark-operator
echo "operator: $u (group $g) can log in with the given key"
