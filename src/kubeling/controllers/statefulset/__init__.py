"""The StatefulSet controller: ordinal pods with stable names, their claims, revisions, status.

This is upstream v1.32's ``pkg/controller/statefulset`` on kubeling's client. For each set it
claims the pods named ``<set>-<ordinal>`` (adopting orphans that match the selector,
releasing those that no longer do), snapshots the pod template into ControllerRevisions
(``history``), and then makes one pass of upstream's ``updateStatefulSet``:

- every ordinal in ``[start, start+replicas)`` gets a pod, created from the current or the
  update revision (``rollingUpdate.partition`` decides), with ``spec.hostname`` = its name,
  ``spec.subdomain`` = ``serviceName``, the labels ``statefulset.kubernetes.io/pod-name``,
  ``apps.kubernetes.io/pod-index`` and ``controller-revision-hash`` (the revision's name),
  and one ``persistentVolumeClaim`` volume per ``volumeClaimTemplates`` entry, pointing at
  ``<template>-<set>-<ordinal>``; claims are created first and never deleted here;
- ``OrderedReady`` stops at the first pod that is not Running and Ready (so pods come up
  one by one, in order) and removes surplus pods from the highest ordinal down, one at a
  time; ``Parallel`` does both in slow-start batches without waiting;
- ``persistentVolumeClaimRetentionPolicy`` is expressed, as upstream, only through
  controller ownerReferences on the claims (to the set for ``whenDeleted: Delete``, to the
  condemned pod for ``whenScaled: Delete``); the garbage collector does the deleting. A
  claim whose pod reference is stale blocks re-creation of that pod until it is gone, so a
  scaled-up pod never mounts a claim that is about to be deleted;
- ``RollingUpdate`` deletes the highest-ordinal pod not at the update revision (down to the
  partition) and waits for each replacement to be Running and Ready; ``OnDelete`` leaves
  updates to the user. ``rollingUpdate.maxUnavailable`` is honoured only with upstream's
  MaxUnavailableStatefulSet gate (alpha, off by default in v1.32): the controller option
  ``{"statefulset": {"MaxUnavailableStatefulSet": true}}`` turns it on;
- status (replicas, readyReplicas, availableReplicas, currentReplicas, updatedReplicas,
  currentRevision, updateRevision, observedGeneration, collisionCount) is written only when
  it changed, and a finished rolling update promotes the update revision to current.

Events and their texts are upstream's (``SuccessfulCreate`` "create Pod web-0 in
StatefulSet web successful", "create Claim www-web-0 Pod web-0 in StatefulSet web success",
``FailedCreate`` "... failed error: ...", ``SuccessfulDelete``), from the component
``statefulset-controller``.

Beyond upstream, on purpose: upstream documents that a rollout stuck on a broken template
("forced rollback") needs the user to delete the stuck pods after reverting the template,
because ``OrderedReady`` waits forever for a pod that will never be Ready. Here, under
``RollingUpdate``, a pod at or above the partition that is not Running and Ready and is
not at the update revision is deleted and recreated at the update revision straight away:
reverting the template (or fixing it) is enough. Healthy pods still roll one at a time.

Two smaller deviations, both to avoid noise from informer lag: a claim that already exists
when we try to create it counts as created (upstream fails the pod create and retries), and
a pod that already exists ends the sync quietly (its watch event brings us back). Claims
whose stale-pod reference blocked a pod are watched, so the pod is created as soon as the
garbage collector removes the claim rather than on the next unrelated event.

Layout: ``utils`` holds the pure rules (upstream's ``stateful_set_utils.go``), ``controller``
the sync and its API writes; ``controllers.history`` the ControllerRevision helpers.
"""

from kubeling.controllers.statefulset.controller import StatefulSetController, build
from kubeling.controllers.statefulset.utils import (
    COMPONENT,
    POD_INDEX_LABEL,
    POD_NAME_LABEL,
    REVISION_LABEL,
    apply_revision,
    new_revision,
    revision_data,
)

__all__ = [
    "COMPONENT",
    "POD_INDEX_LABEL",
    "POD_NAME_LABEL",
    "REVISION_LABEL",
    "StatefulSetController",
    "apply_revision",
    "build",
    "new_revision",
    "revision_data",
]
