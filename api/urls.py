"""Everything under /api/."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from api import converters  # noqa: F401  (registers the path converters)
from api.views import catalog, credentials, observability, runs, steps, triggers, workflows

STEP = "runs/<uuid:run_id>/steps/<node_id:node_id>/"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("workflow-schema/", workflows.WorkflowSchemaApi.as_view(), name="api-workflow-schema"),
    path("workflows/", workflows.WorkflowCollectionApi.as_view(), name="api-workflows"),
    path("workflows/validate/", workflows.WorkflowValidateApi.as_view(), name="api-workflow-validate"),
    path("workflows/<wslug:slug>/", workflows.WorkflowDetailApi.as_view(), name="api-workflow"),
    path("workflows/<wslug:slug>/versions/", workflows.WorkflowVersionsApi.as_view(), name="api-workflow-versions"),
    path("workflows/<wslug:slug>/versions/<int:number>/", workflows.WorkflowVersionApi.as_view(),
         name="api-workflow-version"),
    path("workflows/<wslug:slug>/export/", workflows.WorkflowExportApi.as_view(), name="api-workflow-export"),
    path("workflows/<wslug:slug>/runs/", runs.WorkflowRunStartApi.as_view(), name="api-workflow-runs"),
    path("workflows/<wslug:slug>/analytics/", observability.WorkflowAnalyticsApi.as_view(),
         name="api-workflow-analytics"),
    path("workflows/<wslug:slug>/webhooks/", triggers.WorkflowWebhooksApi.as_view(), name="api-workflow-webhooks"),
    path("workflows/<wslug:slug>/event-triggers/", triggers.WorkflowEventTriggersApi.as_view(),
         name="api-workflow-event-triggers"),
    path("webhooks/<uuid:webhook_id>/", triggers.WebhookDetailApi.as_view(), name="api-webhook"),
    path("webhooks/<uuid:webhook_id>/rotate/", triggers.WebhookRotateApi.as_view(), name="api-webhook-rotate"),
    path("webhooks/<uuid:webhook_id>/deliveries/", triggers.WebhookDeliveriesApi.as_view(),
         name="api-webhook-deliveries"),
    path("event-triggers/<int:trigger_id>/", triggers.EventTriggerDetailApi.as_view(), name="api-event-trigger"),
    path("events/", triggers.EventSendApi.as_view(), name="api-events"),
    path("runs/", runs.RunListApi.as_view(), name="api-runs"),
    path("runs/<uuid:run_id>/", runs.RunDetailApi.as_view(), name="api-run"),
    path("runs/<uuid:run_id>/cancel/", runs.RunCancelApi.as_view(), name="api-run-cancel"),
    path("runs/<uuid:run_id>/events/", runs.RunEventsApi.as_view(), name="api-run-events"),
    path("runs/<uuid:run_id>/timeline/", runs.RunTimelineApi.as_view(), name="api-run-timeline"),
    path("runs/<uuid:run_id>/logs/", observability.RunLogsApi.as_view(), name="api-run-logs"),
    path(STEP, steps.StepDetailApi.as_view(), name="api-step"),
    path(STEP + "retry/", steps.StepRetryApi.as_view(), name="api-step-retry"),
    path(STEP + "rerun-from/", steps.StepRerunFromApi.as_view(), name="api-step-rerun-from"),
    path(STEP + "rerun-preview/", steps.StepRerunPreviewApi.as_view(), name="api-step-rerun-preview"),
    path(STEP + "skip/", steps.StepSkipApi.as_view(), name="api-step-skip"),
    path(STEP + "complete/", steps.StepCompleteApi.as_view(), name="api-step-complete"),
    path(STEP + "approve/", steps.StepApproveApi.as_view(), name="api-step-approve"),
    path(STEP + "reject/", steps.StepRejectApi.as_view(), name="api-step-reject"),
    path("node-types/", catalog.NodeTypeListApi.as_view(), name="api-node-types"),
    path("queues/", catalog.QueueListApi.as_view(), name="api-queues"),
    path("credentials/", credentials.CredentialCollectionApi.as_view(), name="api-credentials"),
    path("credentials/<credential:name>/", credentials.CredentialDetailApi.as_view(), name="api-credential"),
    path("credentials/<credential:name>/rotate/", credentials.CredentialRotateApi.as_view(),
         name="api-credential-rotate"),
]
