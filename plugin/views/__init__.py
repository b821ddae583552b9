"""HTTP views: the widget, the JSON API, the sandbox helpdesk pages, health."""
