from django.urls import path

from webui import triggers, views

app_name = "webui"

urlpatterns = [
    path("workflows/", views.workflow_list, name="workflows"),
    path("workflows/new/", views.workflow_edit, name="workflow-new"),
    path("workflows/<slug:slug>/", views.workflow_detail, name="workflow"),
    path("workflows/<slug:slug>/grid/", views.workflow_grid_view, name="workflow-grid"),
    path("workflows/<slug:slug>/edit/", views.workflow_edit, name="workflow-edit"),
    path("workflows/<slug:slug>/triggers/", triggers.workflow_triggers, name="workflow-triggers"),
    path("workflows/<slug:slug>/triggers/webhooks/new/", triggers.webhook_create_view, name="webhook-create"),
    path("workflows/<slug:slug>/triggers/webhooks/<uuid:endpoint_id>/rotate/", triggers.webhook_rotate_view,
         name="webhook-rotate"),
    path("workflows/<slug:slug>/triggers/webhooks/<uuid:endpoint_id>/enable/", triggers.webhook_enable_view,
         name="webhook-enable"),
    path("workflows/<slug:slug>/triggers/event-triggers/new/", triggers.event_trigger_create_view,
         name="event-trigger-create"),
    path("workflows/<slug:slug>/triggers/event-triggers/<int:trigger_id>/delete/", triggers.event_trigger_delete_view,
         name="event-trigger-delete"),
    path("workflows/<slug:slug>/duplicate/", views.workflow_duplicate, name="workflow-duplicate"),
    path("workflows/<slug:slug>/archive/", views.workflow_archive_view, name="workflow-archive"),
    path("runs/", views.run_list, name="runs"),
    path("runs/<str:run_id>/", views.run_detail, name="run"),
    path("runs/<str:run_id>/steps/<str:node_id>/", views.run_detail, name="run-step"),
    path("runs/<str:run_id>/steps/<str:node_id>/inputs/", views.run_step_inputs, name="run-step-inputs"),
    path("queues/", views.queue_list, name="queues"),
    path("limits/", views.limit_list_page, name="limits"),
    path("credentials/", views.credential_list_page, name="credentials"),
]
