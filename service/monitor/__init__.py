"""Monitoring of live traffic: windows of logged predictions checked against the champion's reference."""

from service.monitor.runner import ManualWindow, Monitor, NoTraffic

__all__ = ["ManualWindow", "Monitor", "NoTraffic"]
