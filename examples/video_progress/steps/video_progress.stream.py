"""The stream the video job publishes its progress on: one group per video, one item ("job").

Public, so the demo page may follow any video; a real app would give a `can_access(request,
group)` function instead (say, checking that `request.query["token"]` belongs to the owner
of the video `group`)."""

config = {
    "name": "videoProgress",
    "baseConfig": {"storageType": "default"},
    "public": True,
}
