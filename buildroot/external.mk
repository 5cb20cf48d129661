include $(sort $(wildcard $(BR2_EXTERNAL_WREN_PATH)/package/*/*.mk))
