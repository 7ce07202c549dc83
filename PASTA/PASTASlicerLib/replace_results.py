"""The "Replace previous result" option: find and remove the nodes an earlier PASTA run made for a volume.

Only nodes PASTA created and tagged are touched: a run's segmentation (tagged with the run's
report id and linked to its input volume) and the table, report and markups it links to that
carry the *same* report id. A user's own nodes, even with similar names, are never removed.
The caller removes the previous run only after the new import succeeded, so a failure loses
nothing (:func:`PASTASlicerLib.analysis.finish_analysis`).

MRML only (no Qt).
"""

from __future__ import annotations

from typing import Optional

from .results_import import INPUT_ROLE, RUN_ATTRIBUTE, results_of


def pasta_results_of_volume(scene, input_volume) -> list:
    """PASTA segmentation nodes made from ``input_volume``, oldest first (scene order)."""
    found = []
    for index in range(scene.GetNumberOfNodes()):
        node = scene.GetNthNode(index)
        if (node.IsA("vtkMRMLSegmentationNode") and node.GetAttribute(RUN_ATTRIBUTE)
                and node.GetNodeReferenceID(INPUT_ROLE) == input_volume.GetID() and results_of(node)):
            found.append(node)
    return found


def previous_result(scene, input_volume) -> Optional[object]:
    """The latest PASTA result of ``input_volume`` (what a new run would replace), or None."""
    results = pasta_results_of_volume(scene, input_volume)
    return results[-1] if results else None


def reader_work(segmentation_node) -> int:
    """How many reader edits and review decisions a result holds (what replacing it would discard)."""
    from . import report_store

    linked = results_of(segmentation_node)
    if not linked or not report_store.is_report_node(linked["report"]):
        return 0
    report = report_store.load_report(linked["report"])
    return len(report.edits) + sum(f.review.status != "pending" for f in report.findings)


def run_nodes(segmentation_node) -> list:
    """The segmentation and the nodes it links to that the same run created (same report id)."""
    run_id = segmentation_node.GetAttribute(RUN_ATTRIBUTE)
    if not run_id:
        return []
    linked = results_of(segmentation_node) or {}
    candidates = [segmentation_node, linked.get("table"), linked.get("report"), *linked.get("markups", [])]
    return [node for node in candidates if node is not None and node.GetAttribute(RUN_ATTRIBUTE) == run_id]


def remove_node(scene, node) -> None:
    """Remove ``node`` with its own display and storage nodes (MRML leaves those behind)."""
    helpers = []
    for getter, count in (("GetNthDisplayNode", "GetNumberOfDisplayNodes"),
                          ("GetNthStorageNode", "GetNumberOfStorageNodes")):
        if hasattr(node, count):
            helpers += [getattr(node, getter)(i) for i in range(getattr(node, count)())]
    scene.RemoveNode(node)
    for helper in helpers:
        if helper is not None and helper.GetScene() is scene:
            scene.RemoveNode(helper)


def remove_run(scene, segmentation_node) -> list[str]:
    """Remove one PASTA run's nodes; returns the names removed (for the log)."""
    nodes = run_nodes(segmentation_node)
    names = [node.GetName() for node in nodes]
    for node in reversed(nodes):
        remove_node(scene, node)
    return names


def replace_run(scene, previous, results, keep_names: bool = True) -> list[str]:
    """Remove the ``previous`` run's nodes; the new run's segmentation, table and report take over
    the names of those that were removed. Returns the names removed."""
    removed = {id(node) for node in run_nodes(previous)}
    linked = results_of(previous) or {}
    names = {key: node.GetName() for key, node in (("segmentation", previous), ("table", linked.get("table")),
                                                   ("report", linked.get("report")))
             if node is not None and id(node) in removed}
    gone = remove_run(scene, previous)
    if keep_names:
        for key, node in (("segmentation", results.segmentation), ("table", results.table),
                          ("report", results.report)):
            if key in names:
                node.SetName(names[key])
    return gone
