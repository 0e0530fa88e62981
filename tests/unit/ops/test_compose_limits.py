"""Unit tests of ops/compose_limits.py, the one reader of compose memory and CPU
limits (ops/run.sh --limits and the deploy checks both use it)."""

import os
import sys
import unittest

OPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "ops")
sys.path.insert(0, OPS)
import compose_limits as cl  # noqa: E402


class MemBytesTest(unittest.TestCase):
    def test_units_are_binary(self):
        self.assertEqual(cl.mem_bytes("160M"), 160 << 20)
        self.assertEqual(cl.mem_bytes("30m"), 30 << 20)
        self.assertEqual(cl.mem_bytes("1g"), 1 << 30)
        self.assertEqual(cl.mem_bytes("64k"), 64 << 10)
        self.assertEqual(cl.mem_bytes("64mb"), 64 << 20)
        self.assertEqual(cl.mem_bytes(" 512 b "), 512)
        self.assertEqual(cl.mem_bytes(1024), 1024)  # YAML may give an int

    def test_rejects_what_is_not_a_size(self):
        for v in ("", "M", "1.5G", "10T", "-1M", "160 MiB", None):
            self.assertIsNone(cl.mem_bytes(v), v)


class ServiceLimitsTest(unittest.TestCase):
    def test_services_with_both_limits_sorted(self):
        doc = {"services": {
            "node2": {"deploy": {"resources": {"limits": {"cpus": "0.625", "memory": "160M"}}}},
            "nginx": {"deploy": {"resources": {"limits": {"cpus": 0.25, "memory": "30M"}}}},
            "cpu-only": {"deploy": {"resources": {"limits": {"cpus": "1"}}}},
            "bare": {"image": "x"},
            "bad": {"deploy": {"resources": {"limits": {"cpus": "1", "memory": "lots"}}}},
        }}
        self.assertEqual(cl.service_limits(doc), [("bad", 1.0, None),
                                                  ("nginx", 0.25, 30 << 20),
                                                  ("node2", 0.625, 160 << 20)])

    def test_empty_documents(self):
        self.assertEqual(cl.service_limits(None), [])
        self.assertEqual(cl.service_limits({"services": None}), [])


if __name__ == "__main__":
    unittest.main()
