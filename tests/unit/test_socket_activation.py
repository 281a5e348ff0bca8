"""Natively Alertmanager listens on a Unix socket ./lab hands it as systemd does (fd 3,
LISTEN_FDS, LISTEN_PID): labctl/proc.py's socket_activated, unix_listener, unix_http_ok."""

import http.server
import stat
import subprocess
import sys
import threading

import pytest

from labctl.proc import LabError, socket_activated, unix_http_ok, unix_listener

SHOW = ("import os, socket, stat; s = os.fstat(3); "
        "print(os.environ['LISTEN_FDS'], os.environ['LISTEN_PID'] == str(os.getpid()), "
        "stat.S_ISSOCK(s.st_mode), "
        "socket.socket(fileno=3).getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))")


def test_the_program_gets_the_socket_as_fd_3_with_systemds_variables(tmp_path):
    path = tmp_path / "web.sock"
    with unix_listener(path) as sock:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        argv = socket_activated(sys.executable, [sys.executable, "-c", SHOW], sock)
        out = subprocess.run(argv, pass_fds=(sock.fileno(),), capture_output=True, text=True,
                             timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "True", "True", "1"]


def test_health_over_the_socket(tmp_path):
    path = tmp_path / "web.sock"
    assert not unix_http_ok(path, "/-/ready")  # nothing there yet

    class Ready(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/-/ready" else 503)
            self.end_headers()

        def log_message(self, *args):
            pass

    with unix_listener(path) as sock:
        server = http.server.HTTPServer(("localhost", 0), Ready, bind_and_activate=False)
        server.socket.close()
        server.socket = sock
        server.server_address = ("localhost", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            assert unix_http_ok(path, "/-/ready")
            assert not unix_http_ok(path, "/other")
        finally:
            server.shutdown()


def test_a_path_too_long_for_a_unix_socket_is_refused_by_name(tmp_path):
    with pytest.raises(LabError, match="107 bytes"):
        unix_listener(tmp_path / ("x" * 120) / "web.sock")
