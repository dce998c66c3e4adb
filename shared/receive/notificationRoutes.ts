/**
 * The routes of the notification functions under NOTIFICATION_URL's /api. Graph posts change
 * notifications to one and lifecycle events to the other, and validates both when it creates a
 * subscription (https://learn.microsoft.com/graph/change-notifications-lifecycle-events). Apart,
 * and importing nothing, because the functions name them when they register.
 */
export const NOTIFICATION_ROUTE = 'notifications/graph';
export const LIFECYCLE_ROUTE = 'notifications/graph/lifecycle';
