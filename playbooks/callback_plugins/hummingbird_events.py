# Hummingbird: reports a playbook's progress to hb-controller.
#
# hb-controller passes a file descriptor in HB_EVENTS_FD; this plugin writes one JSON object a
# line to it: the number of tasks when a play starts, and the name and outcome of every task. It
# writes no task results, so no secret reaches the controller through it. Without HB_EVENTS_FD it
# does nothing.

from __future__ import annotations

import json
import os

from ansible.playbook.handler import Handler
from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: hummingbird_events
    type: notification
    short_description: reports task progress to hb-controller as JSON lines
    description:
      - Writes play and task events to the file descriptor named by HB_EVENTS_FD.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "hummingbird_events"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._out = None
        fd = os.environ.get("HB_EVENTS_FD")
        if fd:
            self._out = os.fdopen(int(fd), "w", buffering=1)

    def _emit(self, **event):
        if self._out is not None:
            self._out.write(json.dumps(event, sort_keys=True) + "\n")

    @staticmethod
    def _counted(task):
        return task.action not in ("meta", "ansible.builtin.meta", "import_tasks", "ansible.builtin.import_tasks")

    def v2_playbook_on_play_start(self, play):
        # Fact gathering is a task of its own that the play's blocks do not hold.
        tasks = 0 if play.gather_facts is False else 1
        for block in play.compile():
            tasks += sum(1 for t in block.get_tasks() if self._counted(t))
        self._emit(event="play", name=play.get_name(), tasks=tasks)

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._emit(event="task", name=task.get_name())

    def _result(self, status, result):
        task = result._task
        if not self._counted(task):
            return
        event = {
            "event": "result",
            "status": status,
            "task": task.get_name(),
            "host": result._host.get_name(),
            # Handlers run on notice and are not among the play's tasks.
            "handler": isinstance(task, Handler),
        }
        if status in ("failed", "unreachable"):
            # A task that hides its output (no_log) hides its message too.
            res = result._result
            if res.get("_ansible_no_log") or task.no_log:
                event["msg"] = "the output of this task is hidden"
            else:
                msg = res.get("msg") or ""
                if res.get("stderr") and (not msg or msg == "non-zero return code"):
                    msg = res["stderr"]
                event["msg"] = str(msg)[-2000:]
        self._emit(**event)

    def v2_runner_on_ok(self, result):
        self._result("changed" if result._result.get("changed") else "ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result("ignored" if ignore_errors else "failed", result)

    def v2_runner_on_skipped(self, result):
        self._result("skipped", result)

    def v2_runner_on_unreachable(self, result):
        self._result("unreachable", result)

    def v2_playbook_on_stats(self, stats):
        self._emit(event="end", failures=sum(stats.failures.values()) + sum(stats.dark.values()))
